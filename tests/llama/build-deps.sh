#!/usr/bin/env bash
# Installs what building llama.cpp through the `llama-cpp-2` crate needs and a new machine may
# lack: cmake and a C++ compiler (the vendored llama.cpp build) and libclang (bindgen generates
# the bindings at build time). Debian packages; a no-op when all are there.
set -euo pipefail

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v c++ >/dev/null || missing+=(g++)
# libclang itself (not libclang-cpp, which other packages bring) and clang's builtin headers.
if [[ -z ${LIBCLANG_PATH:-} ]] && ! { compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null \
  && compgen -G '/usr/lib/llvm-*/lib/clang/*/include/stddef.h' >/dev/null; }; then
  missing+=(libclang-dev)
fi
if ((${#missing[@]})); then
  echo "installing ${missing[*]} (needed to build llama.cpp)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
