#!/usr/bin/env bash
# Creates, once, the virtual environment of llama.cpp's OpenAI-compatible server as packaged by
# `llama-cpp-python[server]` (pinned; it builds llama.cpp from its sdist with cmake, CPU only:
# 7 CPU-minutes, 5 minutes on 2 idle cores), the real server that stands in for the cloud and
# for an edge model server in the `make llama` tests. Venv: ${PICE_CACHE:-~/.cache/pice}/
# llama-server-venv; a stamp file holds the version and build flags, so a re-run is a no-op.
# Prints the venv's python as its last line; everything else goes to stderr.
set -euo pipefail

version=0.3.36
# No llava/mtmd library (the server loads it only for multimodal chat formats). Not
# -march=native: on a CPU with AMX, ggml's AMX kernels crash the server (SIGSEGV at
# `ldtilecfg` on the first request); AVX2 is what x86-64 machines of the last decade have.
cmake_args="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
venv=${PICE_CACHE:-$HOME/.cache/pice}/llama-server-venv
stamp=$venv/.pice-llama-cpp-python
python=${PYTHON:-python3}

if [[ $(cat "$stamp" 2>/dev/null) != "$version $cmake_args" ]]; then
  "$(dirname "${BASH_SOURCE[0]}")/build-deps.sh"
  echo "building llama-cpp-python[server]==$version into $venv (a few minutes)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  # Built here (pip's wheel cache would skip the flags), two jobs.
  CMAKE_ARGS=$cmake_args CMAKE_BUILD_PARALLEL_LEVEL=2 "$venv/bin/python" -m pip install --quiet \
    --disable-pip-version-check --no-cache-dir --no-binary llama-cpp-python \
    "llama-cpp-python[server]==$version" >&2
  echo "$version $cmake_args" >"$stamp"
fi
echo "$venv/bin/python"
