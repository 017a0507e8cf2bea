#!/usr/bin/env bash
# Smoke test of a real node (run it under with-node.sh, or after sourcing DIR/env.sh): a
# Deployment of the pause image turns Available; cluster DNS answers inside the node (kube-dns and
# kubernetes.default through /etc/resolv.conf -> 10.96.0.10 -> kube-proxy -> CoreDNS); a ClusterIP
# and a pod IP answer from the node's network namespace; and `kubectl port-forward` from the host
# reaches a Service (CoreDNS metrics) through the API forwarder.
# Usage: with-node.sh tests/cluster/node/smoke.sh
set -euo pipefail
: "${KUBECONFIG:?}" "${PICE_NODE_NETNS:?}" "${PICE_NODE_PID:?}"
# shellcheck source-path=SCRIPTDIR source=../versions.env
source "$(dirname "$0")/../versions.env"

log() { echo "[node-smoke] $*" >&2; }
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }
in_net() { nsenter --net="/run/netns/$PICE_NODE_NETNS" -- "$@"; }
# In the node's mount namespace as well, whose /etc/resolv.conf names the cluster DNS.
in_node() { nsenter -t "$PICE_NODE_PID" -m -n -- "$@"; }

pause_deployment() {
  local t0; t0=$(now_ms)
  kubectl create deployment smoke-pause --image="registry.k8s.io/pause:$PAUSE_VERSION" --replicas=2 >/dev/null
  kubectl rollout status deployment/smoke-pause --timeout=60s >/dev/null
  log "pause Deployment (2 replicas) Available in $(($(now_ms) - t0)) ms"
  kubectl get pods -l app=smoke-pause -o wide >&2
}

dns() {
  local name want got
  for name in kube-dns.kube-system.svc.cluster.local:10.96.0.10 kubernetes.default:10.96.0.1; do
    want=${name#*:} name=${name%%:*}
    got=$(in_node getent hosts "$name" | awk '{print $1}')
    [ "$got" = "$want" ] || { log "DNS: $name -> '$got', want $want"; return 1; }
    log "DNS: $name -> $got"
  done
}

cluster_ip_and_pod_ip() {
  local pod_ip metrics
  metrics=$(in_net curl -fsS --max-time 5 http://10.96.0.10:9153/metrics) || metrics=
  [[ $metrics == *coredns_build_info* ]] ||
    { log "CoreDNS metrics not reachable at ClusterIP 10.96.0.10:9153"; return 1; }
  pod_ip=$(kubectl -n kube-system get pods -l k8s-app=kube-dns -o 'jsonpath={.items[0].status.podIP}')
  in_net curl -fsS --max-time 5 "http://$pod_ip:8181/ready" >/dev/null ||
    { log "CoreDNS not reachable at pod IP $pod_ip:8181"; return 1; }
  log "ClusterIP 10.96.0.10:9153 and pod IP $pod_ip:8181 answer from the node netns"
}

host_port_forward() {
  local port pf metrics
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  kubectl -n kube-system port-forward svc/kube-dns "$port:9153" >/dev/null 2>&1 &
  pf=$!
  local ok=1
  for _ in $(seq 50); do
    metrics=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/metrics" 2>/dev/null) || metrics=
    if [[ $metrics == *coredns_build_info* ]]; then ok=0; break; fi
    sleep 0.2
  done
  kill "$pf" 2>/dev/null || true
  wait "$pf" 2>/dev/null || true
  [ "$ok" = 0 ] || { log "port-forward to svc/kube-dns:9153 from the host failed"; return 1; }
  log "host: kubectl port-forward svc/kube-dns -> 127.0.0.1:$port/metrics answers"
}

main() {
  kubectl get nodes -o wide >&2
  pause_deployment
  dns
  cluster_ip_and_pod_ip
  host_port_forward
  kubectl delete deployment smoke-pause --wait=false >/dev/null
  log "all checks passed"
}

main "$@"
