//! The progressive gateway (`pice-gateway`): an OpenAI-compatible API that answers each request
//! on the cloud LLM alone or progressively — the cloud writes a sketch of numbered points, edge
//! agents expand the points in parallel, and the answer streams back in point order
//! (`docs/design.md` describes the algorithm).
//!
//! A request goes: [`handlers`] → [`request`] (validation; [`contract`]: what only a cloud-only
//! answer keeps) → [`pipeline`] ([`router`] and [`mode`] decide) → [`passthrough`] to the
//! cloud, or [`progressive`] ([`sketch`] parser, [`scheduler`], one [`fallback`] chain per
//! [`point`] made of [`attempt`]s, [`ensemble`] selection, [`resume`] after a mid-stream
//! failure, [`merge`] in point order) → [`render`] (whole or streamed).
//! Around it: the configuration ([`pice_api::gateway_config`], the contract with the operator), [`cli`], [`server`], [`state`],
//! [`estimates`], [`replicas`] and [`discovery`] of the edge agents, [`cloud`],
//! [`auth`], [`error`], [`metrics`], and [`router`]'s training and evaluation.

pub mod admission;
pub mod answer;
pub mod attempt;
pub mod auth;
pub mod cli;
pub mod cloud;
pub mod contract;
pub mod discovery;
pub mod ensemble;
pub mod error;
pub mod estimates;
pub mod fallback;
pub mod handlers;
pub mod merge;
pub mod metrics;
pub mod mode;
pub mod passthrough;
pub mod pipeline;
pub mod point;
pub mod point_text;
pub mod progressive;
pub mod render;
pub mod replicas;
pub mod request;
pub mod resume;
pub mod router;
pub mod scheduler;
pub mod server;
pub mod sketch;
pub mod state;
