#!/usr/bin/env bash
# Builds the real control-plane binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd, kwok) from Go modules into a cache outside the repo, keyed by version. Idempotent: a warm
# cache returns at once. Prints the bin directory on stdout.
# Usage: build.sh [--node]   --node also builds what the real node needs (node/up.sh): kubelet,
#        kube-proxy (same module and flags), CoreDNS (go install) and the pause binary (gcc -static
#        from the kubernetes module's build/pause/linux/pause.c).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
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

# CoreDNS is its own module; the bin dir is not keyed by its version, so check the binary's.
build_coredns() {
  local have t0=$SECONDS tmp
  have=$("$bin/coredns" -version 2>/dev/null | head -n1) || true
  [ "$have" = "CoreDNS-${COREDNS_VERSION#v}" ] && return 0
  tmp=$(mktemp -d)
  echo "building coredns $COREDNS_VERSION ..." >&2
  GOBIN="$tmp" go install -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  mv "$tmp/coredns" "$bin/coredns"; rmdir "$tmp"
  echo "built coredns in $((SECONDS - t0))s" >&2
}

# The pod sandbox's pause process, as upstream builds it (build/pause/Makefile: static, -Os).
build_pause() {
  local want="pause.c v$PAUSE_VERSION-pice"
  [ "$("$bin/pause" -v 2>/dev/null)" = "$want" ] && return 0
  local src tag
  src=$(cd "$here/tools" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause
  tag=$(sed -n 's/^TAG ?= *//p' "$src/Makefile")
  [ "$tag" = "$PAUSE_VERSION" ] || echo "warning: k8s.io/kubernetes $K8S_VERSION builds pause $tag, versions.env pins $PAUSE_VERSION" >&2
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-pice" -o "$bin/pause.tmp" "$src/linux/pause.c"
  strip "$bin/pause.tmp"
  mv "$bin/pause.tmp" "$bin/pause"
  echo "built pause $PAUSE_VERSION" >&2
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
if [ "${1:-}" = --node ]; then
  build kubelet k8s.io/kubernetes/cmd/kubelet
  build kube-proxy k8s.io/kubernetes/cmd/kube-proxy
  build_pause
  build_coredns
fi
echo "$bin"
