//! clonesync keeps a copy of a PostgreSQL (Aurora) database in another
//! account in sync with its source: publication and slot on the source, a
//! copy-on-write clone, and a subscription attached to the slot at exactly
//! the WAL position the clone was taken at.
//!
//! - [`steps`]: the procedure, one idempotent step per module.
//! - [`pg`]: the PostgreSQL adapter.
//! - [`control_plane`]: the cloud side behind a trait; [`local`] implements
//!   it with local servers.
//! - [`error`]: the one error type, with stable names.

pub mod aws;
pub mod cloud;
pub mod control_plane;
pub mod error;
pub mod handlers;
pub mod lambda;
pub mod local;
pub mod monitor;
pub mod pg;
pub mod pipeline;
pub mod scope;
pub mod steps;
pub mod workflow;

pub use error::{Error, Result};
