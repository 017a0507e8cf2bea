#!/usr/bin/env bash
# Builds the real control-plane binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd, kwok) from Go modules into a cache outside the repo, keyed by version. Idempotent: a warm
# cache returns at once. Prints the bin directory on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
bin="${PICE_CACHE:-$HOME/.cache/pice}/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath"
# Stamp the real version so kubectl, helm and clients see v1.35.x rather than v0.0.0.
major=${K8S_VERSION#v}; minor=${major#*.}; minor=${minor%%.*}; major=${major%%.*}
vpkg=k8s.io/component-base/version
kver="-X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
build() { # name package
  [ -x "$bin/$1" ] && return 0
  local t0=$SECONDS
  echo "building $1 ..." >&2
  (cd "$here/tools" && go build -ldflags "-s -w $kver" -o "$bin/$1.tmp" "$2")
  mv "$bin/$1.tmp" "$bin/$1"
  echo "built $1 in $((SECONDS - t0))s" >&2
}
build etcd ./etcd
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
if [ ! -x "$bin/kwok" ]; then
  t0=$SECONDS; echo "building kwok ..." >&2
  GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  echo "built kwok in $((SECONDS - t0))s" >&2
fi
echo "$bin"
