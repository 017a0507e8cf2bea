//! Which requests go progressive: the learned router `auto` mode consults (docs/router.md).
//!
//! A logistic regression over word, word-pair, opener, character and structural features of
//! the question ([`features`], [`model`]), trained by `pice-gateway router train` from labelled
//! CSV files ([`data`], [`train`]) into a small versioned JSON file. The gateway loads the
//! file `--router-model` names, or the one built in. [`eval`] cross-validates it against the
//! hand-written [`rules`] it replaced.

pub mod data;
pub mod eval;
pub mod features;
pub mod model;
pub mod rules;
pub mod train;

pub use model::Router;
