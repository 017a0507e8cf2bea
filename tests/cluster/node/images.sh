#!/usr/bin/env bash
# Builds the real node's infrastructure images offline with buildah, FROM scratch, and exports
# them as docker-archive tars (what `ctr images import` reads) into a cache dir keyed by version:
#   registry.k8s.io/pause:$PAUSE_VERSION       pause.tar    the pod sandbox (static pause binary)
#   localhost/pice/coredns:$COREDNS_VERSION    coredns.tar  cluster DNS (static coredns binary)
# The binaries come from ../build.sh --node. Idempotent: returns at once when both tars exist.
# Prints the image dir on stdout.
# Usage: images.sh [OUT_DIR]   (default: ~/.cache/pice/node-images-pause-…-coredns-…)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../versions.env
source "$here/../versions.env"

log() { echo "[node-images] $*" >&2; }

# build_image NAME TAG CONTEXT: Containerfile in CONTEXT -> OUT/NAME.tar holding image TAG.
build_image() {
  local name=$1 tag=$2 ctx=$3 t0=$SECONDS
  buildah "${storage[@]}" bud -q --layers=false -f "$ctx/Containerfile" -t "$tag" "$ctx" >/dev/null
  rm -f "$out/$name.tar.tmp"
  buildah "${storage[@]}" push -q "$tag" "docker-archive:$out/$name.tar.tmp:$tag" >/dev/null
  mv "$out/$name.tar.tmp" "$out/$name.tar"
  log "$tag -> $out/$name.tar ($(du -h "$out/$name.tar" | cut -f1), $((SECONDS - t0)) s)"
}

pause_image() {
  local ctx=$work/pause
  mkdir -p "$ctx" && cp "$bin/pause" "$ctx/pause"
  printf '%s\n' 'FROM scratch' 'COPY pause /pause' 'USER 65535:65535' 'ENTRYPOINT ["/pause"]' >"$ctx/Containerfile"
  build_image pause "registry.k8s.io/pause:$PAUSE_VERSION" "$ctx"
}

coredns_image() {
  local ctx=$work/coredns
  mkdir -p "$ctx" && cp "$bin/coredns" "$ctx/coredns"
  printf '%s\n' 'FROM scratch' 'COPY coredns /coredns' 'EXPOSE 53 53/udp' 'ENTRYPOINT ["/coredns"]' >"$ctx/Containerfile"
  build_image coredns "localhost/pice/coredns:$COREDNS_VERSION" "$ctx"
}

# buildah keeps its working containers (and, with overlay, their mounts) in its storage: use a
# private vfs storage (no mounts at all) and drop it afterwards.
cleanup() {
  buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true
  if grep -qF " $work/" /proc/self/mountinfo; then
    awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r umount -l
  fi
  rm -rf "$work"
}

main() {
  out=${1:-${PICE_CACHE:-$HOME/.cache/pice}/node-images-pause-$PAUSE_VERSION-coredns-$COREDNS_VERSION}
  if [ -s "$out/pause.tar" ] && [ -s "$out/coredns.tar" ]; then echo "$out"; return 0; fi
  "$here/deps.sh"
  bin=$("$here/../build.sh" --node)
  mkdir -p "$out"
  work=$(mktemp -d "${TMPDIR:-/tmp}/pice-node-images.XXXXXX")
  storage=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
  trap cleanup EXIT
  pause_image
  coredns_image
  echo "$out"
}

main "$@"
