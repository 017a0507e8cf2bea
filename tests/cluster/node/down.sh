#!/usr/bin/env bash
# Stops a real node started by up.sh and removes everything it made: the processes (found through
# the run's cgroup root and its namespaces, never by name), the cgroup dirs, the network
# namespace, and DIR (kept when PICE_KEEP_NODE=1). The private mounts (tmpfs, sysctl files,
# overlays, pod netns files) live only in the node's mount namespace and go with its last process.
# Safe to call twice, or after a failed or killed up.sh.
# Usage: down.sh [DIR]  (default: $PICE_REAL_NODE_DIR)
#        down.sh --running DIR  exits 0 when a process of that node still runs.
set -euo pipefail

log() { echo "[node-down] $*" >&2; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# alive PID: runs and is not a zombie (no fork: this runs in tight loops).
alive() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# Every process in the run's cgroup root (any hierarchy): components, shims, containers.
cgroup_pids() {
  local mp
  [ -n "$ns" ] && [ -f "$dir/cgroups" ] || return 0
  while read -r mp; do
    [ -d "$mp/$ns" ] && find "$mp/$ns" -name cgroup.procs -exec cat {} + 2>/dev/null
  done <"$dir/cgroups" | sort -un
}

# Processes in the pods' cgroups only (under cgroupRoot/kubepods).
pod_pids() {
  local mp
  [ -n "$ns" ] && [ -f "$dir/cgroups" ] || return 0
  while read -r mp; do
    [ -d "$mp/$ns/kubepods" ] && find "$mp/$ns/kubepods" -name cgroup.procs -exec cat {} + 2>/dev/null
  done <"$dir/cgroups" | sort -un
}

# Processes still in the node's mount or network namespace, should any have left the cgroup (one
# find over /proc; -lname matches the namespace links, e.g. mnt:[4026532178], brackets escaped).
ns_pids() {
  local m=${mntns//[/\\[} n=${netns//[/\\[}
  [ -n "$mntns$netns" ] || return 0
  find /proc/[0-9]*/ns/ -maxdepth 1 \( -name mnt -lname "${m:-none}" -o -name net -lname "${n:-none}" \) \
    2>/dev/null | cut -d/ -f3 | sort -un
}

# ours PID: in the run's cgroup root or namespaces (guards the PIDs in DIR/pids against reuse).
ours() {
  [ -n "$ns" ] && grep -q ":/$ns/" "/proc/$1/cgroup" 2>/dev/null && return 0
  [ -n "$mntns" ] && [ "$(readlink "/proc/$1/ns/mnt" 2>/dev/null)" = "$mntns" ] && return 0
  [ -n "$netns" ] && [ "$(readlink "/proc/$1/ns/net" 2>/dev/null)" = "$netns" ]
}

# component NAME: its PID from DIR/pids, when it still runs and is ours.
component() {
  local pid
  pid=$(awk -v n="$1" '$1 == n {print $2}' "$dir/pids" 2>/dev/null | tail -n1)
  if [ -n "$pid" ] && alive "$pid" && ours "$pid"; then echo "$pid"; fi
}

all_pids() { (cgroup_pids; ns_pids) | sort -un; }

# live LISTER: the PIDs LISTER prints that still run.
live() { "$1" | while read -r p; do if alive "$p"; then echo "$p"; fi; done; }

# signal_until_gone SECONDS SIGNAL LISTER: sends SIGNAL to what LISTER lists every 0.1 s (new
# processes included) until nothing is left (0) or SECONDS have passed (1).
signal_until_gone() {
  local deadline=$(($(now_ms) + $1 * 1000)) pids
  while :; do
    mapfile -t pids < <(live "$3")
    [ ${#pids[@]} -eq 0 ] && return 0
    [ "$(now_ms)" -le "$deadline" ] || return 1
    kill "-$2" "${pids[@]}" 2>/dev/null || true
    sleep 0.1
  done
}

# wait_gone SECONDS LISTER: waits until LISTER lists no live process (0) or SECONDS pass (1).
wait_gone() {
  local deadline=$(($(now_ms) + $1 * 1000))
  until [ -z "$(live "$2")" ]; do
    [ "$(now_ms)" -le "$deadline" ] || return 1
    sleep 0.1
  done
}

# The kubelet first (so it restarts nothing), then the pods (KILL), then the rest: TERM, and
# after 1 s KILL whatever is left in the cgroup root or the namespaces (nothing of the run's state
# is kept, so the apiserver's and etcd's graceful shutdown is not waited for).
kubelet_pid() { if [ -n "$kubelet" ]; then echo "$kubelet"; fi; }
stop_processes() {
  local pids
  kubelet=$(component kubelet)
  if [ -n "$kubelet" ]; then
    kill -TERM "$kubelet" 2>/dev/null || true
    wait_gone 2 kubelet_pid || kill -KILL "$kubelet" 2>/dev/null || true
  fi
  signal_until_gone 5 KILL pod_pids || log "pod processes survive SIGKILL: $(live pod_pids | xargs)"
  mapfile -t pids < <(live all_pids)
  [ ${#pids[@]} -eq 0 ] && return 0
  log "stopping ${#pids[@]} processes"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait_gone 1 all_pids && return 0
  signal_until_gone 5 KILL all_pids || log "processes survive SIGKILL: $(live all_pids | xargs)"
}

# Cgroup dirs, deepest first (a dir goes once its tasks are gone; retry briefly).
remove_cgroups() {
  local mp
  [ -n "$ns" ] && [ -f "$dir/cgroups" ] || return 0
  for _ in $(seq 20); do
    while read -r mp; do
      [ -d "$mp/$ns" ] && find "$mp/$ns" -depth -type d -exec rmdir {} + 2>/dev/null
    done <"$dir/cgroups"
    local left=0
    while read -r mp; do [ -d "$mp/$ns" ] && left=1; done <"$dir/cgroups"
    [ "$left" = 0 ] && return 0
    sleep 0.1
  done
  log "cgroup dirs left: $(while read -r mp; do [ -d "$mp/$ns" ] && echo "$mp/$ns"; done <"$dir/cgroups" | xargs)"
}

# The network namespace; then /run/netns itself when it is empty and a run made it (up.sh's
# marker says whether it made the dir or only its mount).
remove_netns() {
  local marker=/run/pice-node-made-netns
  if [ -n "$ns" ] && [ -e "/run/netns/$ns" ]; then ip netns delete "$ns"; fi
  [ -e "$marker" ] && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ] || return 0
  if mountpoint -q /run/netns; then umount /run/netns; fi
  if [ "$(cat "$marker")" = dir ]; then rmdir /run/netns; fi
  rm -f "$marker"
}

remove_dir() {
  if [ "${PICE_KEEP_NODE:-0}" = 1 ]; then
    log "keeping $dir (PICE_KEEP_NODE=1)"
  elif [ ! -e "$dir/.pice-node" ]; then
    log "not removing $dir: not made by up.sh"
  elif grep -qF " $dir/" /proc/self/mountinfo; then
    log "not removing $dir: something is still mounted under it"
    return 1
  else
    rm -rf "$dir"
  fi
}

main() {
  local running=0
  if [ "${1:-}" = --running ]; then running=1; shift; fi
  dir=${1:-${PICE_REAL_NODE_DIR:-}}
  [ -n "$dir" ] || { echo "usage: down.sh DIR" >&2; exit 2; }
  if [ ! -d "$dir" ]; then
    [ "$running" = 1 ] && exit 1
    exit 0
  fi
  dir=$(cd "$dir" && pwd)
  ns=$(cat "$dir/netns" 2>/dev/null || true)
  mntns=$(cat "$dir/mntns" 2>/dev/null || true)
  netns=$(cat "$dir/netns.id" 2>/dev/null || true)
  if [ "$running" = 1 ]; then [ -n "$( (cgroup_pids; ns_pids) | head -n1)" ]; exit; fi
  local t0; t0=$(now_ms)
  stop_processes
  remove_cgroups
  remove_netns
  [ -n "$ns" ] && log "stopped node $ns in $(($(now_ms) - t0)) ms"
  remove_dir
}

main "$@"
