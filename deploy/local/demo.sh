#!/usr/bin/env bash
# Demo of the operator on this machine, no cluster or GPU needed: starts the local control plane
# (real kube-apiserver, scheduler, controller-manager, etcd; kwok fake nodes), runs pice-operator,
# applies the example pool and shows what PICE placed where. Everything is torn down at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

echo "==> building pice-operator (first run: a few minutes)"
cargo build -q -p pice-operator --bins
echo "==> starting the local control plane (first run builds it from Go modules: about 6 minutes)"
dir=$(mktemp -d /tmp/pice-demo.XXXXXX)
rmdir "$dir"
PICE_CLUSTER_DIR=$dir tests/cluster/up.sh >/dev/null
operator_pid=""
cleanup() {
  [ -n "$operator_pid" ] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  tests/cluster/down.sh "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# shellcheck source=/dev/null
source "$dir/env.sh"

kubectl apply --server-side -f crds/ >/dev/null
kubectl create namespace llm >/dev/null
target/debug/pice-operator --metrics-listen 127.0.0.1:0 >"$dir/operator.log" 2>&1 &
operator_pid=$!
echo "==> kubectl apply -f deploy/examples/assistant.yaml"
kubectl apply -n llm -f deploy/examples/assistant.yaml
kubectl wait -n llm --for=condition=Ready --timeout=90s inferencepool/assistant >/dev/null
echo; kubectl get inferencepools -n llm
echo; kubectl get deployments,services -n llm
echo; echo "Pods and the (fake) nodes the real scheduler bound them to:"
kubectl get pods -n llm -o custom-columns=POD:.metadata.name,NODE:.spec.nodeName,STATUS:.status.phase
echo; kubectl describe inferencepool -n llm assistant | sed -n '/^Status:/,$p'
