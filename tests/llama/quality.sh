#!/usr/bin/env bash
# `pice bench quality` end to end on this machine: llama.cpp's OpenAI-compatible server
# (llama-cpp-python) with SmolLM2-135M as the cloud LLM and, in a second process, as the edge
# model behind a real edge agent (openai backend), a real gateway, and the cloud model as the
# judge. It shows the tool runs end to end; what such small models say about answer quality
# carries no weight for large models. On real GPUs run `pice bench quality` against your own
# gateway instead (README, "Answer quality").
#
# Usage: tests/llama/quality.sh [QUESTIONS_PER_SET]   (binaries from target/release)
set -euo pipefail
cd "$(dirname "$0")/../.."
limit=${1:-8}
python=$(tests/llama/server-venv.sh | tail -n1)
model=$(tests/llama/fetch-model.sh)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 600); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "no answer from $1" >&2; cat "$work"/*.log >&2; exit 1; }

cloud=$(free_port) edge=$(free_port) agent=$(free_port) gateway=$(free_port)
for port in "$cloud" "$edge"; do
  "$python" -m llama_cpp.server --host 127.0.0.1 --port "$port" --n_ctx 4096 --interrupt_requests false \
    --model_alias smollm2 --model "$model" >"$work/server-$port.log" 2>&1 &
done
wait_for "http://127.0.0.1:$cloud/v1/models"
wait_for "http://127.0.0.1:$edge/v1/models"
target/release/pice-edge-agent --backend openai --backend-url "http://127.0.0.1:$edge/v1" --model smollm2 \
  --cache-prompt --slots 2 --listen "127.0.0.1:$agent" --metrics-listen 127.0.0.1:0 >"$work/agent.log" 2>&1 &
cat >"$work/gateway.json" <<JSON
{"pool": "assistant", "port": $gateway, "cloud": {"url": "http://127.0.0.1:$cloud", "model": "smollm2"},
 "edge": [], "routing": {"mode": "auto", "expansion": {"deadlineMs": 120000},
 "admission": {"maxLatencyMs": 600000}}}
JSON
target/release/pice-gateway --config "$work/gateway.json" --listen "127.0.0.1:$gateway" \
  --edge-endpoints "127.0.0.1:$agent" >"$work/gateway.log" 2>&1 &
wait_for "http://127.0.0.1:$gateway/readyz"
target/release/pice bench quality --gateway "http://127.0.0.1:$gateway" --model assistant \
  --questions data/questions/vicuna80.csv,data/questions/lima-train.csv --limit "$limit" --max-tokens 160 \
  --models "SmolLM2-135M-Instruct (GGUF) on llama-cpp-python, 2 CPU cores: cloud, edge and judge alike. Numbers from models this small say nothing about large models; they show the tool runs end to end."
