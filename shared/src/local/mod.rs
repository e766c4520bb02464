//! The local control plane: clusters are PostgreSQL servers started from
//! the machine's binaries, and a clone is a physical copy recovered to a
//! known LSN. The handoff steps run unchanged against it.

pub mod clone;
pub mod server;

pub use clone::{LocalControlPlane, LOCAL_CLONE_EXTRA_SENDERS};
pub use server::{LocalServer, PgBinaries, RunAs};
