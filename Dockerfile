# PICE's images, one target per binary: pice-operator, pice-gateway, pice-edge-agent,
# pice-edge-agent-llama (the agent with llama.cpp inside) and pice-sim (the simulator).
#
# Online (Docker BuildKit, any registry; the context is the repository):
#   docker buildx build --platform linux/amd64,linux/arm64 --target pice-gateway \
#     --build-arg REVISION=$(git rev-parse HEAD) -t REGISTRY/pice-gateway:0.1.0 .
# Offline (here: `make images`, deploy/images/build.sh): buildah builds the same targets with
# BINS=bins-host from a context holding the binaries built on the host in out/, on a base made
# of the host's libraries, CA bundle and a non-root user.
#
# Every image runs as the non-root user 65532, needs no shell, and carries a CA bundle.

ARG BASE=gcr.io/distroless/cc-debian12:nonroot
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG BINS=bins-source

# The binaries built from source, for the platform being built.
FROM ${RUST_IMAGE} AS bins-source
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pice-edge-agent --features llama --bins \
 && mkdir -p /out && cp target/release/pice-edge-agent /out/pice-edge-agent-llama \
 && cargo build --release --locked -p pice-operator -p pice-gateway -p pice-edge-agent -p pice-sim --bins \
 && cp target/release/pice-operator target/release/pice-gateway target/release/pice-edge-agent \
       target/release/pice-sim /out/

# The binaries built on the host (offline builds): the context holds them in out/.
FROM scratch AS bins-host
COPY out/ /out/

FROM ${BINS} AS bins

FROM ${BASE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.source="https://github.com/pice-dev/pice" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="PICE"
USER 65532:65532

FROM runtime AS pice-operator
LABEL org.opencontainers.image.title="pice-operator"
COPY --from=bins /out/pice-operator /usr/local/bin/pice-operator
ENTRYPOINT ["/usr/local/bin/pice-operator"]

FROM runtime AS pice-gateway
LABEL org.opencontainers.image.title="pice-gateway"
COPY --from=bins /out/pice-gateway /usr/local/bin/pice-gateway
ENTRYPOINT ["/usr/local/bin/pice-gateway"]

FROM runtime AS pice-edge-agent
LABEL org.opencontainers.image.title="pice-edge-agent"
COPY --from=bins /out/pice-edge-agent /usr/local/bin/pice-edge-agent
ENTRYPOINT ["/usr/local/bin/pice-edge-agent"]

FROM runtime AS pice-edge-agent-llama
LABEL org.opencontainers.image.title="pice-edge-agent-llama"
COPY --from=bins /out/pice-edge-agent-llama /usr/local/bin/pice-edge-agent
ENTRYPOINT ["/usr/local/bin/pice-edge-agent"]

FROM runtime AS pice-sim
LABEL org.opencontainers.image.title="pice-sim (simulated model server)"
COPY --from=bins /out/pice-sim /usr/local/bin/pice-sim
ENTRYPOINT ["/usr/local/bin/pice-sim"]
