#!/usr/bin/env bash
# Starts a real one-node Kubernetes cluster for tests: etcd, kube-apiserver, controller-manager
# and scheduler plus a real node (containerd 1.6 + runc, kubelet, kube-proxy in iptables mode, a
# CNI bridge) and CoreDNS as a pod behind the kube-dns Service 10.96.0.10. Everything runs inside
# a network namespace and a private mount namespace made here, in a cgroup root of its own; the
# only thing on the host's network is a forwarder to the apiserver on 127.0.0.1. Nothing is routed
# or sent to any address outside the namespace (no veth to the host, no host iptables/sysctls).
#
#   up.sh DIR     (DIR: new or empty; default $PICE_REAL_NODE_DIR or a new temp dir)
#
# Imports every *.tar (docker-archive or OCI) in the dirs of PICE_NODE_IMAGES (colon-separated)
# plus the pause and CoreDNS images (images.sh). Writes DIR/kubeconfig (host side, through the
# forwarder), DIR/kubeconfig-netns (inside the namespace), DIR/env.sh; prints the exports.
# Stop it with down.sh DIR. Needs root with CAP_NET_ADMIN and CAP_SYS_ADMIN (see README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../versions.env
source "$here/../versions.env"

NODE_NAME=pice-node
NODE_IP=10.250.0.1
NODE_GW=10.250.0.254       # answers nothing: packets to the service range die inside the netns
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
PAUSE_IMAGE=registry.k8s.io/pause:$PAUSE_VERSION
COREDNS_IMAGE=localhost/pice/coredns:$COREDNS_VERSION
NETNS_MARKER=/run/pice-node-made-netns

log() { echo "[node-up] $*" >&2; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
phase_start() { phase=$1 t_phase=$(now_ms); }
phase_done() { log "$phase: $(($(now_ms) - t_phase)) ms"; }

# Binaries (build.sh --node, cached), kubectl, the infrastructure image tars, Debian packages.
prepare_bin() {
  "$here/deps.sh"
  bin=$("$here/../build.sh" --node)
  "$here/../kubectl.sh" "$bin"
  infra_images=$("$here/images.sh")
  collect_images
  export PATH="$bin:$PATH"
}

# A state dir of our own: new, empty, or left by an earlier up.sh whose node is gone.
prepare_dir() {
  DIR=${1:-${PICE_REAL_NODE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pice-node.XXXXXX")}}
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  case "$DIR/" in /run/* | /var/lib/* | /var/log/*)
    log "$DIR is hidden inside the node (tmpfs on /run, /var/lib, /var/log); pick another"; exit 1 ;;
  esac
  [ ${#DIR} -le 60 ] || { log "$DIR is too long for containerd's socket path; pick a shorter one"; exit 1; }
  if [ -e "$DIR/.pice-node" ]; then
    if "$here/down.sh" --running "$DIR"; then
      log "a node already runs in $DIR; stop it first: $here/down.sh $DIR"
      exit 1
    fi
    PICE_KEEP_NODE=0 "$here/down.sh" "$DIR"
    mkdir -p "$DIR"
  elif [ -n "$(ls -A "$DIR")" ]; then
    log "$DIR is not empty and was not made by up.sh; refusing to use it"
    exit 1
  fi
  touch "$DIR/.pice-node" "$DIR/pids"
  mkdir -p "$DIR"/{logs,config/cni,pod-logs,fake-sysctl}
}

# A name for this run's network namespace and cgroup root, free in both.
pick_name() {
  ns=pice-$$
  while [ -e "/run/netns/$ns" ] || [ -e "/sys/fs/cgroup/pids/$ns" ] || [ -e "/sys/fs/cgroup/$ns" ]; do
    ns=pice-$$-$RANDOM
  done
  echo "$ns" >"$DIR/netns"
}

# The network namespace: lo, a veth pair with both ends inside (n0 holds the node IP), a route for
# the service range to a gateway that does not exist (so connects to ClusterIPs are routed, then
# DNATed by kube-proxy), forwarding and bridge netfilter on (per-namespace sysctls).
create_netns() {
  # `ip netns add` makes /run/netns (a dir, bind-mounted on itself) when missing; a marker shared
  # by all runs lets the last down.sh undo that.
  if [ ! -d /run/netns ]; then echo dir >"$NETNS_MARKER"
  elif ! mountpoint -q /run/netns && [ ! -e "$NETNS_MARKER" ]; then echo mount >"$NETNS_MARKER"; fi
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add n0 type veth peer name n1
  ip -n "$ns" addr add "$NODE_IP/24" dev n0
  ip -n "$ns" link set n0 up
  ip -n "$ns" link set n1 up
  ip -n "$ns" route add "$SERVICE_CIDR" via "$NODE_GW" dev n0
  nsenter --net="/run/netns/$ns" sh -c '[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]' || {
    log "no net.bridge.bridge-nf-call-iptables in the namespace: the kernel lacks br_netfilter"; exit 1; }
  nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  echo "net:[$(stat -L -c %i "/run/netns/$ns")]" >"$DIR/netns.id"
}

# The cgroup root /NAME in every mounted hierarchy (v1 and v2): kubelet's cgroupRoot, with our
# own processes in /NAME/system, so down.sh finds every process of the run through it.
cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts; }
create_cgroups() {
  local mp d
  cgroup_mounts >"$DIR/cgroups"
  while read -r mp; do
    for d in "$mp/$ns" "$mp/$ns/system"; do
      mkdir -p "$d"
      # A v1 cpuset takes no task until it has CPUs and memory nodes.
      if [ -e "$d/cpuset.cpus" ] && [ ! -e "$mp/cgroup.controllers" ]; then
        cat "$(dirname "$d")/cpuset.cpus" >"$d/cpuset.cpus"
        cat "$(dirname "$d")/cpuset.mems" >"$d/cpuset.mems"
      fi
    done
  done <"$DIR/cgroups"
}

# Moves the calling (sub)shell into NAME/system of every hierarchy; what it execs stays there.
join_cgroup() {
  local mp
  while read -r mp; do echo "$BASHPID" >"$mp/$ns/system/cgroup.procs"; done <"$DIR/cgroups"
}

# The holder: a sleep in the network namespace and a new mount namespace (slave of the host's, so
# nothing mounted in it reaches the host). Every component joins both with nsenter -t HOLDER.
# (Not `ip netns exec`: it remounts /sys without the cgroup hierarchies.)
start_holder() {
  local host_mnt; host_mnt=$(readlink /proc/self/ns/mnt)
  (join_cgroup; exec setsid nsenter --net="/run/netns/$ns" unshare --mount --propagation slave sleep infinity) \
    </dev/null >/dev/null 2>&1 &
  holder=$!
  disown "$holder"
  echo "$holder" >"$DIR/holder.pid"
  for _ in $(seq 50); do
    mntns=$(readlink "/proc/$holder/ns/mnt" 2>/dev/null) || { log "holder exited"; exit 1; }
    [ "$mntns" != "$host_mnt" ] && break
    sleep 0.05
  done
  [ "$mntns" != "$host_mnt" ] || { log "holder did not get its mount namespace"; exit 1; }
  echo "$mntns" >"$DIR/mntns"
}

in_mnt() { nsenter -t "$holder" -m -- "$@"; }
in_node() { nsenter -t "$holder" -m -n -- "$@"; }

# Inside the mount namespace only: tmpfs on /run (shim sockets, xtables lock), /var/lib (kubelet's
# fixed device-plugin path, CNI IPAM) and /var/log; /etc/resolv.conf pointing at the cluster DNS;
# and, over six *global* sysctls kubelet would otherwise rewrite on the host, files that already
# hold its values (it reads them and writes nothing).
setup_mounts() {
  local d kv name
  for d in /run /var/lib /var/log; do in_mnt mount -t tmpfs -o mode=0755 pice-node "$d"; done
  printf 'nameserver %s\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n' \
    "$DNS_IP" >"$DIR/config/resolv.conf"
  in_mnt mount --bind "$DIR/config/resolv.conf" /etc/resolv.conf ||
    log "warning: could not replace /etc/resolv.conf inside the node"
  for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
    kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
    name=${kv%%=*}
    echo "${kv#*=}" >"$DIR/fake-sysctl/${name//\//.}"
    in_mnt mount --bind "$DIR/fake-sysctl/${name//\//.}" "/proc/sys/$name"
  done
}

# start NAME CMD...: runs CMD in the node's namespaces and cgroup, detached, logging to
# DIR/logs/NAME.log; records its PID.
start() {
  local name=$1; shift
  (join_cgroup; exec setsid nsenter -t "$holder" -m -n -- "$@") >"$DIR/logs/$name.log" 2>&1 </dev/null &
  echo "$name $!" >>"$DIR/pids"
  disown "$!"
}

# Fails at once when a component has exited (its log tail says why).
check_alive() {
  local name pid
  while read -r name pid; do
    kill -0 "$pid" 2>/dev/null || { log "$name (pid $pid) exited"; return 1; }
  done <"$DIR/pids"
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s.
wait_for() {
  local deadline=$(($(now_ms) + $1 * 1000)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    check_alive
    [ "$(now_ms)" -lt "$deadline" ] || { log "timed out waiting for $what"; return 1; }
    sleep 0.2
  done
}

# Identities of the node's own components, signed by certs.sh's CA: the kubelet as
# system:node:NODE (Node authorizer, NodeRestriction) and kube-proxy as system:kube-proxy.
sign_client() { # NAME SUBJECT
  local pki=$DIR/pki
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key" 2>/dev/null
  openssl req -new -key "$pki/$1.key" -subj "$2" 2>/dev/null |
    openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -sha256 -days 3650 \
      -extfile <(printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
        extendedKeyUsage=clientAuth) -out "$pki/$1.crt" 2>/dev/null
  chmod 600 "$pki/$1.key"
}

create_certs() {
  "$here/../certs.sh" "$DIR"
  sign_client kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  sign_client kube-proxy "/CN=system:kube-proxy"
}

# kubeconfig FILE SERVER CERT: a kubeconfig for the client cert DIR/pki/CERT.{crt,key}.
kubeconfig() {
  local pki=$DIR/pki
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pice-node
  cluster:
    server: $2
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $3
  user:
    client-certificate-data: $(base64 -w0 "$pki/$3.crt")
    client-key-data: $(base64 -w0 "$pki/$3.key")
contexts:
- name: pice-node
  context: {cluster: pice-node, user: $3, namespace: default}
current-context: pice-node
EOF
  chmod 600 "$1"
}

write_kubeconfigs() {
  kubeconfig "$DIR/kubeconfig-netns" https://127.0.0.1:6443 admin
  kubeconfig "$DIR/config/kubelet.kubeconfig" https://127.0.0.1:6443 kubelet
  kubeconfig "$DIR/config/kube-proxy.kubeconfig" https://127.0.0.1:6443 kube-proxy
}

# The apiserver on the host's loopback: fwd.py listens on a free 127.0.0.1 port here and connects
# to 127.0.0.1:6443 inside the namespace. DIR/kubeconfig points at it.
start_forwarder() {
  (join_cgroup; exec setsid python3 "$here/fwd.py" --netns "/run/netns/$ns" --target 127.0.0.1:6443 \
    --port-file "$DIR/api-port") >"$DIR/logs/forwarder.log" 2>&1 </dev/null &
  echo "forwarder $!" >>"$DIR/pids"
  disown "$!"
  wait_for 10 "forwarder" test -s "$DIR/api-port"
  api_port=$(cat "$DIR/api-port")
  kubeconfig "$DIR/kubeconfig" "https://127.0.0.1:$api_port" admin
  export KUBECONFIG=$DIR/kubeconfig
}

healthy() { in_node curl -fsS --max-time 2 "$@" | grep -qx ok; }
etcd_healthy() { in_node curl -fsS --max-time 2 http://127.0.0.1:2379/health | grep -q '"health":"true"'; }

# Control plane inside the namespace, on fixed ports (the namespace is ours alone).
start_etcd() {
  start etcd etcd --name=pice --data-dir="$DIR/etcd" --log-level=warn --unsafe-no-fsync \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=pice=http://127.0.0.1:2380
  wait_for 30 "etcd /health" etcd_healthy
}

# As ../up.sh, but serving on the node IP too (the default endpoint reconciler makes the
# `kubernetes` Service point at NODE_IP:6443, which pods reach through kube-proxy), with a client
# cert for kubelet logs/exec/port-forward, and NodeRestriction as in kubeadm clusters.
start_apiserver() {
  local pki=$DIR/pki
  start kube-apiserver kube-apiserver --bind-address=0.0.0.0 --advertise-address="$NODE_IP" \
    --secure-port=6443 --etcd-servers=http://127.0.0.1:2379 --cert-dir="$pki/generated" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=Node,RBAC --allow-privileged=true \
    --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false \
    --kubelet-client-certificate="$pki/admin.crt" --kubelet-client-key="$pki/admin.key" \
    --kubelet-preferred-address-types=InternalIP \
    --requestheader-client-ca-file="$pki/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key"
  wait_for 90 "kube-apiserver /readyz (through the forwarder)" kubectl get --raw /readyz
}

start_controllers() {
  local pki=$DIR/pki kc=$DIR/kubeconfig-netns
  local common=(--kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc"
    --bind-address=127.0.0.1 --leader-elect=false)
  start kube-controller-manager kube-controller-manager "${common[@]}" --controllers='*' \
    --use-service-account-credentials=true --service-account-private-key-file="$pki/sa.key" \
    --root-ca-file="$pki/ca.crt" --cluster-signing-cert-file="$pki/ca.crt" \
    --cluster-signing-key-file="$pki/ca.key"
  start kube-scheduler kube-scheduler "${common[@]}"
  wait_for 60 "kube-controller-manager /healthz" healthy -k https://127.0.0.1:10257/healthz
  wait_for 60 "kube-scheduler /healthz" healthy -k https://127.0.0.1:10259/healthz
}

# containerd 1.6 (Debian) with all state under DIR, runc with cgroupfs, our pause image and the
# CNI bridge. restrict_oom_score_adj: without CAP_SYS_RESOURCE runc may not lower oom_score_adj
# (the pause container asks for -998), so clamp to containerd's own.
start_containerd() {
  local c=$DIR/containerd
  mkdir -p "$c"
  cat >"$DIR/config/containerd.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/config/cni"
EOF
  cat >"$DIR/config/cni/10-pice.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "pice", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  start containerd containerd --config "$DIR/config/containerd.toml"
  wait_for 30 "containerd" ctr -a "$c/containerd.sock" version
}

# Every *.tar of the infrastructure dir and of the PICE_NODE_IMAGES dirs (checked before anything
# starts), imported into the CRI namespace four at a time.
collect_images() {
  local dirs d f
  image_files=()
  IFS=: read -r -a dirs <<<"$infra_images:${PICE_NODE_IMAGES:-}"
  for d in "${dirs[@]}"; do
    [ -n "$d" ] || continue
    [ -d "$d" ] || { log "PICE_NODE_IMAGES: $d is not a directory"; exit 1; }
    for f in "$d"/*.tar; do [ -e "$f" ] && image_files+=("$f"); done
  done
}

import_images() {
  printf '%s\0' "${image_files[@]}" |
    xargs -0 -n1 -P4 ctr -a "$DIR/containerd/containerd.sock" -n k8s.io images import >/dev/null
  log "imported ${#image_files[@]} image archives"
}

start_kubelet() {
  cat >"$DIR/config/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$ns
containerRuntimeEndpoint: unix://$DIR/containerd/containerd.sock
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $DIR/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $DIR/config/pod-resolv.conf
podLogsDir: $DIR/pod-logs
failSwapOn: false
makeIPTablesUtilChains: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
systemReserved: {cpu: 100m, memory: 256Mi}
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
nodeStatusUpdateFrequency: 4s
EOF
  # dnsPolicy: Default pods get this; nothing answers on their own loopback.
  echo "nameserver 127.0.0.1" >"$DIR/config/pod-resolv.conf"
  start kubelet kubelet --config="$DIR/config/kubelet.yaml" --kubeconfig="$DIR/config/kubelet.kubeconfig" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --node-labels=pice.dev/real-node=true
}

# In a non-init network namespace nf_conntrack_max is read-only and the hashsize global: zeros
# tell kube-proxy to leave them alone.
start_kube_proxy() {
  cat >"$DIR/config/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $DIR/config/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
nodePortAddresses: [primary]
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy kube-proxy --config="$DIR/config/kube-proxy.yaml"
}

node_ready() {
  kubectl get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' | grep -qx True
}

start_node() {
  start_kubelet
  start_kube_proxy
  wait_for 60 "node $NODE_NAME Ready" node_ready
  wait_for 60 "ServiceAccount default/default" kubectl -n default get serviceaccount default
}

# Up means cluster DNS answers through the Service: after the rollout, kube-proxy may still need
# a moment to program 10.96.0.10.
dns_answers() { in_node timeout 2 getent hosts kube-dns.kube-system.svc.cluster.local | grep -q "^${DNS_IP}[[:space:]]"; }
start_coredns() {
  sed "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|" "$here/manifests/coredns.yaml" | kubectl apply -f - >/dev/null
  wait_for 90 "CoreDNS rollout" kubectl -n kube-system rollout status deploy/coredns --timeout=2s
  wait_for 30 "cluster DNS at $DNS_IP" dns_answers
}

write_env() {
  # shellcheck disable=SC2016 # $PATH is expanded when env.sh is sourced
  printf 'export %s\n' "KUBECONFIG=$DIR/kubeconfig" "PATH=$bin:\$PATH" "PICE_REAL_NODE_DIR=$DIR" \
    "PICE_NODE_NETNS=$ns" "PICE_NODE_PID=$holder" >"$DIR/env.sh"
  cat "$DIR/env.sh"
}

usage_note() {
  log "API from the host: https://127.0.0.1:$api_port (KUBECONFIG=$DIR/kubeconfig)"
  log "a Service from the host: kubectl port-forward -n NS svc/NAME LOCAL:PORT, then 127.0.0.1:LOCAL"
  log "pod IPs and ClusterIPs: nsenter --net=/run/netns/$ns CMD; with cluster DNS too: nsenter -t $holder -m -n CMD"
  log "stop: $here/down.sh $DIR"
}

# On failure: show why, then stop what was started (down.sh keeps DIR if PICE_KEEP_NODE=1).
on_exit() {
  [ "$ok" = 1 ] && return 0
  log "failed during: ${phase:-setup}"
  for f in "$DIR"/logs/*.log; do
    [ -e "$f" ] && { echo "----- last 30 lines of $f" >&2; tail -n 30 "$f" >&2; }
  done
  "$here/down.sh" "$DIR" || true
}

main() {
  local t0; t0=$(now_ms)
  phase_start "binaries, images, packages"; prepare_bin; phase_done
  prepare_dir "$@"
  ok=0
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  log "state dir: $DIR"
  phase_start "namespaces and cgroups"
  pick_name; create_netns; create_cgroups; start_holder; setup_mounts
  phase_done
  phase_start "certificates"; create_certs; write_kubeconfigs; start_forwarder; phase_done
  phase_start "etcd"; start_etcd; phase_done
  phase_start "kube-apiserver"; start_apiserver; phase_done
  phase_start "controller-manager, scheduler"; start_controllers; phase_done
  phase_start "containerd"; start_containerd; phase_done
  phase_start "image import"; import_images; phase_done
  phase_start "kubelet, kube-proxy, node Ready"; start_node; phase_done
  phase_start "CoreDNS"; start_coredns; phase_done
  write_env
  ok=1
  log "node up in $(($(now_ms) - t0)) ms (netns $ns)"
  usage_note
}

main "$@"
