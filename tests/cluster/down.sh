#!/usr/bin/env bash
# Stops a local control plane started by up.sh and removes its state dir (kept when
# PICE_KEEP_CLUSTER=1). Safe to call twice or after a failed up.sh.
# Usage: down.sh [DIR]  (default: $PICE_CLUSTER_DIR)
#        down.sh --running DIR  exits 0 when a process of that cluster still runs.
set -euo pipefail
components="etcd kube-apiserver kube-controller-manager kube-scheduler kwok"

log() { echo "[down] $*" >&2; }

# alive PID: runs and is not a zombie (a killed child of up.sh stays one until up.sh exits).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# ours PID: one of our components, and its command line names this cluster's DIR.
ours() {
  local exe cmd
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  case " $components " in *" ${exe##*/} "*) ;; *) return 1 ;; esac
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$dir/"* ]]
}

# Any component naming DIR that was started but not recorded, then those in DIR/pids newest
# first: clients stop before the apiserver, the apiserver before etcd (which waits for watches).
cluster_pids() {
  local pid p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if alive "$p" && ours "$p" && ! grep -q " $p\$" "$dir/pids" 2>/dev/null; then echo "$p"; fi
  done
  if [ -f "$dir/pids" ]; then
    tac "$dir/pids" | while read -r _ pid; do
      if [ -n "${pid:-}" ] && alive "$pid" && ours "$pid"; then echo "$pid"; fi
    done
  fi
}

# stop PID: TERM, wait up to 5 s, then KILL.
stop() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do
    alive "$1" || return 0
    sleep 0.1
  done
  log "pid $1 still running 5 s after TERM, killing it"
  kill -KILL "$1" 2>/dev/null || true
}

remove_dir() {
  if [ "${PICE_KEEP_CLUSTER:-0}" = 1 ]; then
    log "keeping $dir (PICE_KEEP_CLUSTER=1)"
  elif [ -e "$dir/.pice-cluster" ]; then
    rm -rf "$dir"
  else
    log "not removing $dir: not made by up.sh"
  fi
}

main() {
  local running=0 pid
  if [ "${1:-}" = --running ]; then running=1; shift; fi
  dir=${1:-${PICE_CLUSTER_DIR:-}}
  [ -n "$dir" ] || { echo "usage: down.sh DIR" >&2; exit 2; }
  if [ ! -d "$dir" ]; then
    [ "$running" = 1 ] && exit 1
    exit 0
  fi
  dir=$(cd "$dir" && pwd)
  mapfile -t pids < <(cluster_pids)
  if [ "$running" = 1 ]; then [ ${#pids[@]} -gt 0 ]; exit; fi
  if [ ${#pids[@]} -gt 0 ]; then
    log "stopping ${#pids[@]} processes: ${pids[*]}"
    local t0=$SECONDS
    for pid in "${pids[@]}"; do stop "$pid"; done
    log "stopped in $((SECONDS - t0)) s"
  fi
  remove_dir
}

main "$@"
