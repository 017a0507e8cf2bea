#!/usr/bin/env bash
# The SDK tests (`make sdk`): builds the binaries, creates the venv with the official OpenAI
# Python SDK (tests/sdk/setup.sh) and installs the official Node SDK (tests/sdk/node/setup.sh),
# then runs pytest, which starts pice-sim, two pice-edge-agent processes and pice-gateway on
# 127.0.0.1 and stops them at the end; test_node_sdk.py runs the Node tests (node --test) on that
# gateway. Extra arguments go to pytest (`-k node`: only the Node SDK).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cargo build --locked -p pice-sim -p pice-edge-agent -p pice-gateway --bins
venv="$(tests/sdk/setup.sh | tail -n 1)"
tests/sdk/node/setup.sh
export PICE_BIN_DIR="${PICE_BIN_DIR:-$root/target/debug}"
cd tests/sdk
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
