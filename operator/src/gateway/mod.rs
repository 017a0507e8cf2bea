//! The progressive gateway: its configuration contract with the operator.

pub mod config;
