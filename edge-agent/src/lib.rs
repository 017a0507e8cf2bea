//! PICE edge agent (placeholder until the data plane lands).
