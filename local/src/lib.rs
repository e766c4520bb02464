//! The local clonesync application: the whole pipeline on one machine.
//! Clusters are PostgreSQL servers started from the machine's binaries, and
//! a clone is a physical copy recovered to a known LSN; the handoff steps
//! of the `clonesync` library run unchanged against it.
//!
//! - [`server`], [`clone`]: local servers and clones ([`LocalControlPlane`]).
//! - [`cloud`]: RAM and RDS played locally, with their events
//!   ([`LocalCloud`] implements the library's ports).
//! - [`invoke`]: the Lambda Invoke API for moto's Step Functions engine.
//! - [`iam`]: every function's AWS calls checked against its role in
//!   `template.yaml`, as AWS enforces IAM.
//! - [`moto`]: the emulator, installed and started on demand, reachable
//!   only by this account.
//! - [`peer`]: which local account is on the other end of a connection.
//! - [`runtime`]: the real state machine executed by moto ([`LocalRuntime`]).
//! - [`workload`], [`compare`]: the demo's data set, write load and
//!   table comparison.
//!
//! It is used by the `clonesync` command and the tests; no Lambda function
//! links it, so the HTTP server lives here and not in the library.

pub mod clone;
pub mod cloud;
pub mod compare;
pub mod iam;
pub mod invoke;
pub mod moto;
pub mod peer;
pub mod runtime;
pub mod server;
pub mod workload;

pub use clone::{LocalControlPlane, LOCAL_CLONE_EXTRA_SENDERS};
pub use cloud::LocalCloud;
pub use runtime::LocalRuntime;
pub use server::{requested_major, LocalServer, PgBinaries, RunAs, PG_MAJOR_VAR};
