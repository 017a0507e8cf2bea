//! PICE's wire contracts and the process plumbing every PICE binary shares.
//!
//! - [`proto`]: the `pice.edge.v1` gRPC protocol between the gateway (client) and the edge
//!   agents (server);
//! - [`openai_wire`]: OpenAI chat-completion request, response and streamed-chunk types;
//! - [`generation`]: what a model backend must do to expand a point (the [`generation::ModelBackend`]
//!   trait, its request, events and errors);
//! - [`openai_client`]: the streaming client of any OpenAI-compatible server (one backend of
//!   the agent, and the gateway's cloud client), with its SSE decoder;
//! - [`prompt`]: the sketch and expansion prompts;
//! - [`tls`]: TLS and mutual TLS of the gateway–agent link;
//! - [`telemetry`], [`shutdown`], [`crypto`], [`probes`]: logging, signals, the TLS provider and
//!   the `/healthz`, `/readyz` and `/metrics` endpoints of every binary.

pub mod crypto;
pub mod generation;
pub mod openai_client;
mod openai_stream;
pub mod openai_wire;
pub mod probes;
pub mod prompt;
pub mod shutdown;
pub mod sse;
pub mod stop;
pub mod telemetry;
pub mod tls;

/// The generated `pice.edge.v1` protocol: messages, the server trait and the client.
pub mod proto {
    tonic::include_proto!("pice.edge.v1");
}
