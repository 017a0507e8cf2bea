#!/usr/bin/env bash
# Runs a command against a fresh local control plane: starts it (up.sh), runs CMD with KUBECONFIG
# and PATH set, and always tears it down (down.sh), also on failure or Ctrl-C. Exits with CMD's
# status; when CMD fails, dumps the cluster's objects, events and component logs to stderr.
# Usage: with-cluster.sh CMD [ARGS...]   (PICE_KEEP_CLUSTER=1 keeps the state dir)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

log() { echo "[with-cluster] $*" >&2; }

# Shows what the cluster looked like when CMD failed.
dump() {
  log "command failed; cluster state follows"
  kubectl get all,events -A -o wide >&2 || true
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
  "$here/down.sh" "$DIR" || log "down.sh failed"
  exit "$status"
}

main() {
  [ $# -gt 0 ] || { echo "usage: with-cluster.sh CMD [ARGS...]" >&2; exit 2; }
  DIR=${PICE_CLUSTER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pice-cluster.XXXXXX")}
  if "$here/down.sh" --running "$DIR"; then
    log "a cluster already runs in $DIR; not touching it"
    exit 1
  fi
  child=
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  PICE_CLUSTER_DIR=$DIR "$here/up.sh" >/dev/null
  # shellcheck source=/dev/null
  source "$DIR/env.sh"
  export KUBECONFIG PATH PICE_CLUSTER_DIR=$DIR
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
