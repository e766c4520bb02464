//! The cloud side of the procedure, behind one trait: the local
//! implementation makes clones of local servers; the AWS one (RDS, RAM)
//! implements the same calls.

use crate::error::{PreflightFailure, Result};
use crate::pg::{Endpoint, Lsn, SessionSettings};
use serde::{Deserialize, Serialize};
use std::future::Future;
use tokio_postgres::Client;

/// Where a clone can be reached. No credentials: the clone is reached with
/// the same login as its source (a copy has the same roles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneInfo {
    pub clone_id: String,
    pub host: String,
    pub port: u16,
}

pub trait ControlPlane: Sync {
    /// Checks only the control plane can make (parameter groups, KMS,
    /// binaries, ...). Failures are collected, not raised.
    fn preflight(&self) -> impl Future<Output = Result<Vec<PreflightFailure>>> + Send;

    /// Make (or find, when it already exists) a copy-on-write clone of the
    /// source as of now. It may still be on its way when this returns (an
    /// Aurora restore; the local cloud's background copy): `clone_status`
    /// says when it is available. Its start LSN is after the slot's
    /// consistent point either way, because the slot was made first.
    fn create_clone(&self, clone_id: &str) -> impl Future<Output = Result<CloneInfo>> + Send;

    /// The LSN the clone's data corresponds to: on Aurora
    /// `aurora_volume_logical_start_lsn()`, run on the clone.
    fn clone_start_lsn(
        &self,
        clone: &CloneInfo,
        clone_client: &Client,
    ) -> impl Future<Output = Result<Lsn>> + Send;

    /// Remove the clone; `false` when there was none.
    fn delete_clone(&self, clone_id: &str) -> impl Future<Output = Result<bool>> + Send;

    /// The clone when it accepts connections; `Clone.NotReady` while it is
    /// still being made.
    fn clone_status(&self, clone_id: &str) -> impl Future<Output = Result<CloneInfo>> + Send;

    /// How to log in to the source (credentials fetched now, not stored).
    fn source_endpoint(&self) -> impl Future<Output = Result<Endpoint>> + Send;

    /// How to log in to the clone.
    fn clone_endpoint(&self, clone: &CloneInfo) -> impl Future<Output = Result<Endpoint>> + Send;

    /// Session settings (timeouts, TLS) for connections to either side.
    fn session(&self) -> SessionSettings {
        SessionSettings::default()
    }
}
