//! The clone control plane: making, finding and removing a pipeline's
//! copy-on-write clone, and the logins to its two databases.
//!
//! [`Clones`] is the account-level side (one per cloud): it hands out each
//! pipeline's [`ControlPlane`] and answers whether a clone is available,
//! which an event handler asks knowing only the pipeline and clone ids.
//! AWS: `crate::aws::AwsCloud` (RDS); locally: the local crate's cloud.

use crate::error::{PreflightFailure, Result};
use crate::pg::{Endpoint, Lsn, SessionSettings};
use crate::pipeline::{CloneInfo, CloneSettings, PipelineSpec, SourceCluster};
use std::future::Future;
use tokio_postgres::Client;

/// The source login as fetched, with the version of the secret it was
/// read from (Secrets Manager's `VersionId`), which tells a subscription
/// made before a rotation from one made after.
#[derive(Debug, Clone)]
pub struct SourceLogin {
    pub endpoint: Endpoint,
    pub version: String,
}

pub trait Clones: Sync {
    /// The control plane for one pipeline.
    type Plane<'a>: ControlPlane
    where
        Self: 'a;

    fn plane_for<'a>(
        &'a self,
        pipeline: &PipelineSpec,
        source: &SourceCluster,
        clone: &CloneSettings,
    ) -> Self::Plane<'a>;

    /// The control plane of a registered pipeline.
    fn plane_of<'a>(&'a self, record: &crate::pipeline::PipelineRecord) -> Self::Plane<'a> {
        self.plane_for(&record.pipeline, &record.source, &record.clone)
    }

    /// The clone when it accepts connections; `Clone.NotReady` while it is
    /// still being made, `Clone.Failed` when making it failed for good.
    fn clone_status(
        &self,
        pipeline_id: &str,
        clone_id: &str,
    ) -> impl Future<Output = Result<CloneInfo>> + Send;

    /// Whether anything of a clone of that id still exists (also while it
    /// is being made or deleted), whoever owns it.
    fn clone_exists(&self, clone_id: &str) -> impl Future<Output = Result<bool>> + Send;
}

/// One pipeline's view of the clone control plane.
pub trait ControlPlane: Sync {
    /// Checks only the control plane can make (parameter groups, KMS,
    /// binaries, ...). Failures are collected, not raised.
    fn preflight(&self) -> impl Future<Output = Result<Vec<PreflightFailure>>> + Send;

    /// Make (or find, when it already exists) a copy-on-write clone of the
    /// source as of now. It may still be on its way when this returns (an
    /// Aurora restore; the local cloud's background copy):
    /// [`Clones::clone_status`] says when it is available. Its start LSN
    /// is after the slot's consistent point either way, because the slot
    /// was made first.
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

    /// How to log in to the source (credentials fetched now, not stored),
    /// and the version of the secret they came from.
    fn source_login(&self) -> impl Future<Output = Result<SourceLogin>> + Send;

    /// How to log in to the source.
    fn source_endpoint(&self) -> impl Future<Output = Result<Endpoint>> + Send {
        async { Ok(self.source_login().await?.endpoint) }
    }

    /// How to log in to the clone.
    fn clone_endpoint(&self, clone: &CloneInfo) -> impl Future<Output = Result<Endpoint>> + Send;

    /// The clone's login as of the source secret's previous version, when
    /// the clone is logged in to with the source's login and the secret
    /// has a previous version (it rotated); `None` otherwise. The clone
    /// copied the source's roles with the passwords of its day, so after a
    /// rotation this is the login it still accepts
    /// ([`crate::steps::follow_rotation`]).
    fn previous_clone_endpoint(
        &self,
        clone: &CloneInfo,
    ) -> impl Future<Output = Result<Option<Endpoint>>> + Send;

    /// Replication slots and WAL senders making the clone takes on the
    /// source besides the pipeline's own (a local base backup's two);
    /// preflight counts them.
    fn extra_senders(&self) -> i64 {
        0
    }

    /// Session settings (timeouts, TLS) for connections to the source (and
    /// to the clone, unless [`ControlPlane::clone_session`] says otherwise).
    fn session(&self) -> SessionSettings {
        SessionSettings::default()
    }

    /// Session settings for connections to the clone.
    fn clone_session(&self) -> SessionSettings {
        self.session()
    }
}
