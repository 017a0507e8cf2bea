#!/usr/bin/env bash
# `make arm64`: cross-builds PICE's binaries for linux/arm64 on this amd64 machine (rustup's
# aarch64-unknown-linux-gnu target and Debian's aarch64 cross gcc, installed when missing), then
# smoke-runs each under qemu-user-static: `--version`, and `pice-sim` serving one simulated
# completion on 127.0.0.1. The binaries land in target/aarch64-unknown-linux-gnu/release/.
# Online image builds (docker buildx --platform linux/arm64) compile the same code natively.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=aarch64-unknown-linux-gnu
bins=(pice-operator pice-gateway pice-edge-agent pice-sim)

missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
t0=$SECONDS
cargo build --locked --release --target "$target" -p pice-operator -p pice-gateway -p pice-edge-agent -p pice-sim --bins
echo "cross-built in $((SECONDS - t0)) s"

dir=target/$target/release
run() { qemu-aarch64-static -L /usr/aarch64-linux-gnu "$@"; }
for bin in "${bins[@]}"; do
  printf '%-16s %s, %s\n' "$bin" "$(file -b "$dir/$bin" | cut -d, -f1-2)" "$(run "$dir/$bin" --version)"
done

# pice-sim under emulation answers a chat completion over a real socket.
log=$(mktemp)
run "$dir/pice-sim" --listen 127.0.0.1:0 --profile edge-smollm-cpu >"$log" 2>/dev/null &
sim=$!
trap 'kill $sim 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$log" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$log" | head -n1)
[ -n "$addr" ] || { echo "pice-sim (arm64, emulated) did not start" >&2; exit 1; }
answer=$(curl -fsS --max-time 30 "http://$addr/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"m","messages":[{"role":"user","content":"Say hello"}],"max_tokens":8}')
echo "$answer" | grep -q '"finish_reason"' || { echo "unexpected answer: $answer" >&2; exit 1; }
echo "pice-sim (arm64 under qemu) answered: $(echo "$answer" | head -c 160)..."
