#!/usr/bin/env bash
# The SDK tests (`make sdk`): builds the binaries, creates the venv with the official OpenAI
# Python SDK (tests/sdk/setup.sh), then runs pytest, which starts pice-sim, two pice-edge-agent
# processes and pice-gateway on 127.0.0.1 and stops them at the end. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
cargo build --locked -p pice-sim -p pice-edge-agent -p pice-gateway --bins
venv="$(tests/sdk/setup.sh | tail -n 1)"
export PICE_BIN_DIR="${PICE_BIN_DIR:-$root/target/debug}"
cd tests/sdk
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
