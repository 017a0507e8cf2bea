# Developer entry points. `make` or `make help` lists the targets and what they do.
SHELL := bash
.DEFAULT_GOAL := help

# Every binary's package: the operator, the gateway, the dev CLI, the edge agent, the simulator.
BIN_PACKAGES := -p pice-operator -p pice-gateway -p pice -p pice-edge-agent -p pice-sim

# Where `make e2e-real` writes the images it builds and imports into the real node.
E2E_IMAGES_DIR ?= $(HOME)/.cache/pice/images-e2e

# Where `make images` writes the image tars, and the state dir of `make node-up`.
IMAGES_DIR ?= $(HOME)/.cache/pice/images
PICE_NODE_DIR ?= /tmp/pice-node

# State dir of the local control plane started by `make cluster-up`.
PICE_CLUSTER_DIR ?= /tmp/pice-cluster

# Cases per property test in `make fuzz` (`cargo test` runs 256): the in-process decoders and
# parser, and the gateway's request path over HTTP (each case a real request).
FUZZ_CASES ?= 60000
FUZZ_HTTP_CASES ?= 5000

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: cluster-up
cluster-up: ## Start a local Kubernetes control plane in PICE_CLUSTER_DIR (default /tmp/pice-cluster)
	@PICE_CLUSTER_DIR=$(PICE_CLUSTER_DIR) tests/cluster/up.sh >/dev/null
	@echo "Local cluster running; its state and logs are in $(PICE_CLUSTER_DIR). Use it with:"
	@echo "  source $(PICE_CLUSTER_DIR)/env.sh   # sets KUBECONFIG, puts kubectl 1.35 and helm 4 first on PATH"
	@echo "  kubectl get nodes -o wide"
	@echo "Stop it with: make cluster-down"

.PHONY: cluster-down
cluster-down: ## Stop the local control plane and remove PICE_CLUSTER_DIR
	@tests/cluster/down.sh $(PICE_CLUSTER_DIR)

.PHONY: node-up
node-up: ## Start a real node (containerd, kubelet, CoreDNS; tests/cluster/node) in PICE_NODE_DIR (default /tmp/pice-node) with the images of `make images` imported; prints how to reach the API and a Service
	PICE_NODE_IMAGES=$(IMAGES_DIR) tests/cluster/node/up.sh $(PICE_NODE_DIR)

.PHONY: node-down
node-down: ## Stop the real node started by `make node-up`
	tests/cluster/node/down.sh $(PICE_NODE_DIR)

.PHONY: test
test: lint unit llama sdk e2e e2e-real ## The test command: lint, unit tests, the llama backend on a real model, the OpenAI SDK against the gateway, e2e tests on a fresh local control plane, e2e tests on real pods of a real node

.PHONY: lint
lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

.PHONY: unit
unit: ## Unit and socket-level tests of every crate (no cluster needed; includes the CRD drift check)
	cargo test --workspace --exclude pice-tests --locked

.PHONY: llama
llama: ## Edge agent with the llama.cpp backend: clippy, then its tests on SmolLM2-135M (fetched once into ~/.cache/pice/models); llama.cpp's OpenAI server (llama-cpp-python, built once into ~/.cache/pice) as the openai backend's model server and as the gateway's cloud
	tests/llama/build-deps.sh
	cargo clippy -p pice-edge-agent --features llama --all-targets --locked -- -D warnings
	model=$$(tests/llama/fetch-model.sh) && PICE_MODEL_PATH=$$model cargo test -p pice-edge-agent --features llama --locked
	# The real-text path through the gateway: the llama agent built above expands a sketch.
	model=$$(tests/llama/fetch-model.sh) && PICE_MODEL_PATH=$$model cargo test -p pice-gateway --locked --test gateway real_text -- --ignored
	# llama.cpp's OpenAI-compatible server with the same model stands in for an edge model server
	# and for the cloud: JSON mode, logprobs, its own 400, a real sketch expanded on the edge.
	python=$$(tests/llama/server-venv.sh | tail -n1) && model=$$(tests/llama/fetch-model.sh) && \
	  export PICE_LLAMA_SERVER_PYTHON=$$python PICE_MODEL_PATH=$$model && \
	  cargo test -p pice-edge-agent --locked --test openai_backend_llama_server -- --ignored && \
	  cargo test -p pice-gateway --locked --test gateway real_cloud -- --ignored

.PHONY: sdk
sdk: ## The gateway through the official OpenAI Python SDK (venv in .venv) and the Node SDK smoke set against real sim, edge agent and gateway processes, plus a recording cloud for the OpenAI contract
	tests/sdk/run.sh

.PHONY: e2e
e2e: ## E2e tests against a local control plane started for the run and torn down after it
	cargo build $(BIN_PACKAGES) --bins --locked
	tests/cluster/with-cluster.sh cargo test -p pice-tests --locked --no-fail-fast

.PHONY: e2e-real
e2e-real: ## E2e tests on real pods: builds the images (debug binaries), starts a real node (tests/cluster/node) with them imported, runs tests/e2e/real_node.rs, tears it down
	PICE_IMAGE_PROFILE=debug deploy/images/build.sh $(E2E_IMAGES_DIR)
	tests/e2e/files-image.sh $(E2E_IMAGES_DIR)
	cargo build -p pice-tests --tests --locked
	model=$$(tests/llama/fetch-model.sh) && PICE_MODEL_PATH=$$model PICE_NODE_IMAGES=$(E2E_IMAGES_DIR) \
	  tests/cluster/node/with-node.sh cargo test -p pice-tests --locked --test e2e_real_node -- --ignored --nocapture

.PHONY: crds
crds: ## Regenerate the CRD from the Rust types into crds/ and the Helm chart's crds/
	cargo run -q -p pice-operator --bin pice-operator -- crd > crds/inferencepool.yaml
	cp crds/inferencepool.yaml charts/pice/crds/inferencepool.yaml

.PHONY: images
images: ## Build PICE's images offline with buildah (release binaries, a base of the host's libraries), export them as tars to ~/.cache/pice/images and print their sizes
	deploy/images/build.sh $(IMAGES_DIR)

.PHONY: arm64
arm64: ## Cross-build the binaries for linux/arm64 (rustup target + Debian's cross gcc) and smoke-run them under qemu-user-static
	deploy/images/arm64.sh

.PHONY: demo
demo: ## Run the operator on a local control plane with the example pool, show the result, tear down
	deploy/local/demo.sh

.PHONY: bench-scaling
bench-scaling: ## Benchmark: queue spike to patched Deployment (sync 1 s and 5 s), writes docs/benchmarks/
	cargo build $(BIN_PACKAGES) --bins --locked
	tests/cluster/with-cluster.sh cargo test -p pice-tests --locked --test bench_scaling -- --ignored --nocapture

.PHONY: bench-b3
bench-b3: ## Benchmark B3 pools: the operator with 1, 100 and 1000 InferencePools (PICE_B3_POOLS, PICE_B3_LABEL, PICE_OPERATOR_BIN), writes docs/benchmarks/B3-pools.*
	cargo build --release -p pice-operator --locked
	tests/cluster/with-cluster.sh cargo test -p pice-tests --locked --test bench_pools -- --ignored --nocapture

.PHONY: bench-b1
bench-b1: ## Benchmark B1: cloud-only vs SoT vs PICE progressive/auto on simulated hardware under Poisson load, writes docs/benchmarks/B1.md and plots
	cargo build --release $(BIN_PACKAGES) --bins --locked
	target/release/pice bench b1 $(B1_ARGS)

.PHONY: bench-b4
bench-b4: ## Benchmark B4: the llama backend's shared-prefix batching vs separate and sequential sequences on this CPU with SmolLM2-135M (fetched once into ~/.cache/pice/models), writes docs/benchmarks/B4.md
	model=$$(tests/llama/fetch-model.sh) && \
	  cargo run --release -p pice-edge-agent --features llama --locked --example b4 -- $$model docs/benchmarks/B4.md $(B4_RUNS)

.PHONY: bench-quality
bench-quality: ## Answer quality, progressive vs cloud-only, judged pairwise in both orders: end to end on llama.cpp with SmolLM2-135M (cloud, edge and judge), writes docs/benchmarks/quality.md
	cargo build --release -p pice -p pice-gateway -p pice-edge-agent --bins --locked
	tests/llama/quality.sh $(QUALITY_LIMIT)

.PHONY: bench-b2
bench-b2: ## Benchmark B2: PICE gateway vs vllm-router, sglang-router, Envoy, LiteLLM in cloud pass-through (routers into ~/.cache/pice/b2), writes docs/benchmarks/B2.md and plots
	cargo build --release -p pice -p pice-gateway --bins --locked
	deploy/bench/install-routers.sh
	target/release/pice bench b2 $(B2_ARGS)

.PHONY: fuzz
fuzz: ## Property tests with more cases than cargo test's 256: the SSE and OpenAI stream decoders and the sketch parser (FUZZ_CASES, 60000), the gateway's request path over HTTP (FUZZ_HTTP_CASES, 5000)
	PROPTEST_CASES=$(FUZZ_CASES) cargo test -p pice-wire -p pice-gateway --lib --locked properties
	PROPTEST_CASES=$(FUZZ_HTTP_CASES) cargo test -p pice-gateway --test gateway --locked properties
