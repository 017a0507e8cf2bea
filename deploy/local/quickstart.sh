#!/usr/bin/env bash
# The quickstart, the README's first command: builds what is missing (the `pice` command line,
# the gateway, the simulator and the edge agent; `cargo build`, nothing to do when up to date),
# then runs `pice local --demo` on deploy/examples/local-sim.yaml: a simulated cloud LLM, two
# simulated edge devices and the real gateway on this machine, one question in progressive and
# in cloud-only mode, the progressive answer and a comparison on screen, then everything stops.
# Extra arguments go to `pice local` (for example --port 9090).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install Rust with https://rustup.rs, then run this again" >&2
  echo "(the toolchain pinned in rust-toolchain.toml is installed on first use)" >&2
  exit 1
fi

bins=(pice pice-gateway pice-sim pice-edge-agent)
missing=()
for bin in "${bins[@]}"; do
  [[ -x target/debug/$bin ]] || missing+=("$bin")
done
if ((${#missing[@]})); then
  echo "==> building ${missing[*]} (cargo build; the first build of a fresh clone takes several minutes)"
else
  echo "==> checking that ${bins[*]} are up to date (cargo build)"
fi
cargo build --locked -q "${bins[@]/#/--package=}"

exec target/debug/pice local -f deploy/examples/local-sim.yaml --demo "$@"
