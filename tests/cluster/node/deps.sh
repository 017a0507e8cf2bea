#!/usr/bin/env bash
# Installs the Debian packages the real node needs, when something is missing: containerd (1.6,
# with ctr), runc, the CNI plugins (/usr/lib/cni), iptables, conntrack, buildah, and gcc with
# libc6-dev (the static pause binary). First checks what no package gives: root with CAP_NET_ADMIN
# and CAP_SYS_ADMIN (CAP_SYS_RESOURCE is optional).
# Usage: deps.sh   (idempotent; a no-op when everything is there)
set -euo pipefail

log() { echo "[node-deps] $*" >&2; }

# has_cap BIT: the bit is set in this process's effective capability set.
has_cap() { (( 0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> $1 & 1 )); }

check_privileges() {
  [ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
  has_cap 12 || { log "CAP_NET_ADMIN is missing: cannot create the network namespace"; exit 1; }
  has_cap 21 || { log "CAP_SYS_ADMIN is missing: cannot create namespaces, mounts or cgroups"; exit 1; }
  has_cap 24 || log "note: CAP_SYS_RESOURCE is missing; containerd runs with restrict_oom_score_adj"
}

# The packages of the commands (or files) that are missing, one a line.
missing_packages() {
  local want=(containerd:containerd ctr:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins
    iptables:iptables conntrack:conntrack buildah:buildah gcc:gcc /usr/include/stdio.h:libc6-dev)
  local item cmd pkg
  for item in "${want[@]}"; do
    cmd=${item%%:*} pkg=${item#*:}
    if [[ $cmd == /* ]]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null && continue; fi
    echo "$pkg"
  done | sort -u
}

main() {
  check_privileges
  local pkgs
  mapfile -t pkgs < <(missing_packages)
  [ ${#pkgs[@]} -eq 0 ] && return 0
  log "installing: ${pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

main "$@"
