#!/usr/bin/env bash
# Installs the Node side of the SDK tests: Node.js and npm from Debian when missing, then the
# pinned official `openai` npm package into tests/sdk/node/node_modules (git-ignored) with
# `npm ci`. Re-running is free and offline: a stamp holding the hash of package.json and
# package-lock.json skips `npm ci` while node_modules was installed from those very files.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing Node.js and npm from Debian" >&2
  packages=(npm)
  command -v node >/dev/null || packages=(nodejs npm)
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${packages[@]}" >&2
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if (( major < 18 )); then
  echo "Node.js $(node --version) is too old for the SDK tests (node --test, fetch): 18 or later" >&2
  exit 1
fi

stamp="$dir/node_modules/.pice-stamp"
want="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || ! -d "$dir/node_modules/openai" || "$(cat "$stamp")" != "$want" ]]; then
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$stamp"
fi
