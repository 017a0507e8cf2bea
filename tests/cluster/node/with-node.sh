#!/usr/bin/env bash
# Runs a command against a fresh real node (see up.sh): starts it in a new state dir, runs CMD on
# the host with KUBECONFIG (host side, through the forwarder), PATH, PICE_REAL_NODE_DIR,
# PICE_NODE_NETNS and PICE_NODE_PID set, and always tears it down (down.sh), also on failure or
# Ctrl-C. Exits with CMD's status; when CMD fails, dumps the cluster's objects, events and
# component logs to stderr. CMD reaches pod IPs and ClusterIPs with
# `nsenter --net=/run/netns/$PICE_NODE_NETNS ...`, and cluster DNS names as well with
# `nsenter -t $PICE_NODE_PID -m -n ...` (the node's mount namespace holds its resolv.conf).
# Usage: with-node.sh CMD [ARGS...]
#   PICE_NODE_IMAGES=DIR[:DIR...]  image tars to import;  PICE_KEEP_NODE=1 keeps the state dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

log() { echo "[with-node] $*" >&2; }

# Shows what the cluster looked like when CMD failed.
dump() {
  log "command failed; cluster state follows"
  kubectl get nodes,all,events -A -o wide >&2 || true
  local f
  for f in "$DIR"/logs/*.log; do
    [ -e "$f" ] || continue
    echo "----- last 50 lines of $f" >&2
    tail -n 50 "$f" >&2
  done
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "${child:-}" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  # up.sh marks DIR before it makes anything; an unmarked temp dir of ours is just removed.
  if [ -e "$DIR/.pice-node" ]; then "$here/down.sh" "$DIR" || log "down.sh failed"
  elif [ "$made_dir" = 1 ]; then rmdir "$DIR" 2>/dev/null || true; fi
  exit "$status"
}

main() {
  [ $# -gt 0 ] || { echo "usage: with-node.sh CMD [ARGS...]" >&2; exit 2; }
  made_dir=0
  if [ -n "${PICE_REAL_NODE_DIR:-}" ]; then DIR=$PICE_REAL_NODE_DIR
  else DIR=$(mktemp -d "${TMPDIR:-/tmp}/pice-node.XXXXXX") made_dir=1; fi
  if "$here/down.sh" --running "$DIR"; then
    log "a node already runs in $DIR; not touching it"
    exit 1
  fi
  child=
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  "$here/up.sh" "$DIR" >/dev/null
  # shellcheck source=/dev/null
  source "$DIR/env.sh"
  export KUBECONFIG PATH PICE_REAL_NODE_DIR PICE_NODE_NETNS PICE_NODE_PID
  # In the background so that a signal to this script is handled at once; stdin stays attached.
  "$@" <&0 &
  child=$!
  local status=0
  wait "$child" || status=$?
  child=
  [ "$status" -eq 0 ] || dump
  exit "$status"
}

main "$@"
