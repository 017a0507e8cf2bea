#!/usr/bin/env bash
# Writes kwok's default Node and Pod stages (the ones kwokctl would apply) for the pinned kwok
# release into BIN_DIR/kwok-stages.yaml, once. The kwok binary itself starts with no stages.
# The stage files are read unchanged from the kwok Go module, so they always match the binary.
# Usage: kwok-stages.sh BIN_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
bin=${1:?usage: kwok-stages.sh BIN_DIR}
out="$bin/kwok-stages.yaml"
[ -s "$out" ] && exit 0

stages=(
  node/fast/node-initialize.yaml
  node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml
  pod/fast/pod-complete.yaml
  pod/fast/pod-delete.yaml
)

module_dir() {
  (cd "$here/tools" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION") |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

dir=$(module_dir)
[ -d "$dir/kustomize/stage" ] || { echo "kwok module not found (got '$dir')" >&2; exit 1; }
for s in "${stages[@]}"; do
  echo "---"
  cat "$dir/kustomize/stage/$s"
done >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
