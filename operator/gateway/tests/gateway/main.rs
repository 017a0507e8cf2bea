//! The progressive gateway over real sockets on 127.0.0.1: a simulated cloud LLM (`pice-sim`'s
//! server), edge agents with the simulator backend speaking real gRPC, and the gateway's HTTP
//! API called as a client would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission;
mod contract;
mod failures;
mod harness;
mod modes;
mod overlap;
mod real_cloud;
mod real_text;
mod request_properties;
mod requests;
