#!/usr/bin/env bash
# Starts a real local Kubernetes control plane as processes on 127.0.0.1 (random free ports):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with fake Nodes from
# nodes/*.yaml. State, logs and kubeconfig go to $PICE_CLUSTER_DIR (default: a new temp dir).
# Prints the exports to use it (also in DIR/env.sh); stop it with down.sh DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

log() { echo "[up] $*" >&2; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
phase_start() { phase=$1 t_phase=$(now_ms); }
phase_done() { log "$phase: $(($(now_ms) - t_phase)) ms"; }

# Binaries: control plane (build.sh, cached), kubectl + helm, kwok's default stages.
prepare_bin() {
  bin=$("$here/build.sh")
  "$here/kubectl.sh" "$bin"
  "$here/kwok-stages.sh" "$bin"
  export PATH="$bin:$PATH"
}

# A state dir of our own: new, empty, or left by an earlier up.sh whose cluster is gone.
prepare_dir() {
  DIR=${PICE_CLUSTER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pice-cluster.XXXXXX")}
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  if [ -e "$DIR/.pice-cluster" ]; then
    if "$here/down.sh" --running "$DIR"; then
      log "a cluster already runs in $DIR; stop it first: $here/down.sh $DIR"
      exit 1
    fi
    PICE_KEEP_CLUSTER=0 "$here/down.sh" "$DIR"
    mkdir -p "$DIR"
  elif [ -n "$(ls -A "$DIR")" ]; then
    log "$DIR is not empty and was not made by up.sh; refusing to use it"
    exit 1
  fi
  touch "$DIR/.pice-cluster" "$DIR/pids"
  mkdir -p "$DIR/logs"
}

# Picks N distinct free TCP ports on 127.0.0.1 (all held open together, then released).
free_ports() {
  python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

write_kubeconfig() {
  local pki=$DIR/pki
  cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pice-local
  cluster:
    server: https://127.0.0.1:$p_api
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: pice-admin
  user:
    client-certificate-data: $(base64 -w0 "$pki/admin.crt")
    client-key-data: $(base64 -w0 "$pki/admin.key")
contexts:
- name: pice-local
  context: {cluster: pice-local, user: pice-admin, namespace: default}
current-context: pice-local
EOF
  chmod 600 "$DIR/kubeconfig"
}

# start NAME CMD...: runs CMD in the background, logging to DIR/logs/NAME.log; records its PID.
start() {
  local name=$1; shift
  "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
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

healthy() { curl -fsS --max-time 2 "$@" | grep -qx ok; }
etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$p_etcd/health" | grep -q '"health":"true"'; }
api_ready() { healthy --cacert "$DIR/pki/ca.crt" "https://127.0.0.1:$p_api/readyz"; }

start_etcd() {
  start etcd etcd --name=pice --data-dir="$DIR/etcd" --log-level=warn --unsafe-no-fsync \
    --listen-client-urls="http://127.0.0.1:$p_etcd" --advertise-client-urls="http://127.0.0.1:$p_etcd" \
    --listen-peer-urls="http://127.0.0.1:$p_peer" --initial-advertise-peer-urls="http://127.0.0.1:$p_peer" \
    --initial-cluster="pice=http://127.0.0.1:$p_peer"
  wait_for 30 "etcd /health" etcd_healthy
}

# The audit log (DIR/logs/audit.log, JSON lines, every request at level Metadata) lets tests count
# requests per user, verb and resource; batch mode writes it off the request path (at most 1 s
# late), so it does not slow the API server down. It is never rotated (maxsize 0 would mean
# 100 MB), so that one file holds every request.
audit_flags() {
  echo "--audit-policy-file=$here/audit-policy.yaml --audit-log-path=$DIR/logs/audit.log"
  echo "--audit-log-format=json --audit-log-mode=batch --audit-log-batch-max-wait=1s"
  echo "--audit-log-batch-max-size=500 --audit-log-batch-buffer-size=100000 --audit-log-maxsize=1000000"
}

# --endpoint-reconciler-type=none: Endpoints may not hold 127.0.0.1, and no pod here calls the API.
# The requestheader/proxy-client flags set up the aggregation layer (and let controller-manager
# and scheduler find the front-proxy CA they look up).
start_apiserver() {
  local pki=$DIR/pki
  # shellcheck disable=SC2046
  start kube-apiserver kube-apiserver $(audit_flags) --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$p_api" --etcd-servers="http://127.0.0.1:$p_etcd" --cert-dir="$pki/generated" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --authorization-mode=Node,RBAC --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --profiling=false --endpoint-reconciler-type=none \
    --requestheader-client-ca-file="$pki/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key"
  wait_for 90 "kube-apiserver /readyz" api_ready
}

# Common flags of controller-manager and scheduler: admin kubeconfig, loopback serving, and a
# client rate limit (default 20 QPS) high enough that the pods of a thousand pools are not
# throttled by the control plane itself: benchmarks measure PICE, not these components.
kube_flags() {
  echo "--kubeconfig=$DIR/kubeconfig --authentication-kubeconfig=$DIR/kubeconfig"
  echo "--authorization-kubeconfig=$DIR/kubeconfig --bind-address=127.0.0.1 --leader-elect=false"
  echo "--kube-api-qps=500 --kube-api-burst=1000"
}

start_controllers() {
  local pki=$DIR/pki
  # shellcheck disable=SC2046
  start kube-controller-manager kube-controller-manager $(kube_flags) --secure-port="$p_kcm" \
    --controllers='*' --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key"
  # shellcheck disable=SC2046
  start kube-scheduler kube-scheduler $(kube_flags) --secure-port="$p_sched"
  start kwok kwok --kubeconfig="$DIR/kubeconfig" --config="$here/kwok.yaml" --config="$bin/kwok-stages.yaml"
  wait_for 60 "kube-controller-manager /healthz" healthy -k "https://127.0.0.1:$p_kcm/healthz"
  wait_for 60 "kube-scheduler /healthz" healthy -k "https://127.0.0.1:$p_sched/healthz"
  # The token controller creating the default ServiceAccount proves controller-manager works.
  wait_for 60 "ServiceAccount default/default" kubectl -n default get serviceaccount default
}

create_nodes() {
  kubectl apply -f "$here/nodes/" >/dev/null
  local n; n=$(kubectl get nodes -l type=kwok -o name | wc -l)
  log "created $n fake nodes from $here/nodes/"
  wait_for 60 "$n Ready nodes" kubectl wait --for=condition=Ready nodes -l type=kwok --timeout=2s
}

write_env() {
  # shellcheck disable=SC2016 # $PATH is expanded when env.sh is sourced
  printf 'export KUBECONFIG=%s\nexport PATH=%s:$PATH\n' "$DIR/kubeconfig" "$bin" >"$DIR/env.sh"
  cat "$DIR/env.sh"
}

# On failure: show why, then stop what was started (down.sh keeps DIR if PICE_KEEP_CLUSTER=1).
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
  phase_start "build and fetch binaries"; prepare_bin; phase_done
  prepare_dir
  ok=0
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  log "state dir: $DIR"
  phase_start "certificates"; "$here/certs.sh" "$DIR"; phase_done
  read -r p_etcd p_peer p_api p_kcm p_sched <<<"$(free_ports 5)"
  write_kubeconfig
  export KUBECONFIG=$DIR/kubeconfig
  phase_start "etcd"; start_etcd; phase_done
  phase_start "kube-apiserver"; start_apiserver; phase_done
  phase_start "controller-manager, scheduler, kwok"; start_controllers; phase_done
  phase_start "fake nodes"; create_nodes; phase_done
  write_env
  ok=1
  log "cluster up in $(($(now_ms) - t0)) ms (apiserver https://127.0.0.1:$p_api)"
}

main "$@"
