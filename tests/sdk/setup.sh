#!/usr/bin/env bash
# Creates the virtual environment of the SDK tests at .venv (repository root, git-ignored) with
# the official OpenAI Python SDK and pytest at pinned versions. Re-running is cheap: pip skips
# what is already installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${PICE_SDK_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/tests/sdk/requirements.txt"
echo "$venv"
