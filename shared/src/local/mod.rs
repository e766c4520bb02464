//! The local control plane: clusters are PostgreSQL servers started from
//! the machine's binaries, and a clone is a physical copy recovered to a
//! known LSN. The handoff steps run unchanged against it.
//!
//! For a whole local run, [`cloud::LocalCloud`] also plays RAM and RDS
//! (emitting their events), and [`runtime::LocalRuntime`] executes the real
//! state machine in moto with the Lambda tasks served in-process.

pub mod clone;
pub mod cloud;
pub mod compare;
pub mod invoke;
pub mod moto;
pub mod runtime;
pub mod server;
pub mod workload;

pub use clone::{LocalControlPlane, LOCAL_CLONE_EXTRA_SENDERS};
pub use cloud::LocalCloud;
pub use runtime::LocalRuntime;
pub use server::{LocalServer, PgBinaries, RunAs};
