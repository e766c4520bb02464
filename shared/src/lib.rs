//! clonesync keeps a copy of a PostgreSQL (Aurora) database in another
//! account in sync with its source: publication and slot on the source, a
//! copy-on-write clone, and a subscription attached to the slot at exactly
//! the WAL position the clone was taken at.
//!
//! The layers, bottom to top (a module imports only from layers below it,
//! which a contract test checks):
//!
//! 1. [`error`] and PostgreSQL's value types ([`pg::name`], [`pg::lsn`],
//!    [`pg::secret`], [`pg::quote`]).
//! 2. [`pipeline`]: the domain — request, names, scope, undo plan, records.
//! 3. [`pg`]: the PostgreSQL adapter (sessions, catalog queries; all SQL).
//! 4. [`ports`]: what the workflow needs from the cloud, by role.
//! 5. [`aws`]: the AWS adapters behind the ports.
//! 6. [`steps`]: the procedure, one idempotent step per module (pg and
//!    ports only).
//! 7. [`monitor`]: the lag monitor (and its metrics: the workflow's
//!    verification writes through it).
//! 8. [`workflow`]: what each state machine task runs, on typed values.
//! 9. [`handlers`] (the JSON boundary) and [`lambda`] (the Lambda glue).
//!
//! The local application (servers, clones, the stand-in RAM and RDS, the
//! Invoke endpoint, moto, the demo) is the `clonesync-local` crate; no
//! Lambda function links it.

pub mod aws;
pub mod error;
pub mod handlers;
pub mod lambda;
pub mod monitor;
pub mod pg;
pub mod pipeline;
pub mod ports;
pub mod steps;
pub mod workflow;

pub use error::{Error, Result};
