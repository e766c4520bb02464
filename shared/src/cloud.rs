//! The account-level services a step uses besides its pipeline's
//! [`ControlPlane`]: sharing the source cluster, asking whether a clone is
//! available by its id, the registry, and the Step Functions callbacks.
//!
//! In AWS these are RAM, RDS, DynamoDB and Step Functions
//! ([`crate::lambda::Context`]). Locally the sharing and the clones are
//! played by [`crate::local::LocalCloud`], while the registry and the
//! callbacks go to the same DynamoDB and Step Functions APIs (served by
//! moto), so the handlers in [`crate::handlers`] run unchanged on both.

use crate::aws::ram::{Accepted, Share};
use crate::aws::rds::{CloneSettings, SourceCluster};
use crate::aws::registry::Registry;
use crate::control_plane::{CloneInfo, ControlPlane};
use crate::error::Result;
use crate::workflow::State;
use std::future::Future;

pub trait Cloud: Sync {
    /// The control plane for one pipeline.
    type Plane<'a>: ControlPlane
    where
        Self: 'a;

    fn plane_for<'a>(
        &'a self,
        pipeline_id: &str,
        source: &SourceCluster,
        clone: &CloneSettings,
    ) -> Self::Plane<'a>;

    /// The control plane for one pipeline's state.
    fn plane<'a>(&'a self, state: &State) -> Self::Plane<'a> {
        self.plane_for(state.pipeline.id.as_str(), &state.source, &state.clone)
    }

    /// The Region the steps run in (input ARNs must be in it).
    fn region(&self) -> &str;

    fn registry(&self) -> Registry<'_>;

    fn sfn(&self) -> &aws_sdk_sfn::Client;

    /// Share the source cluster with the target account (idempotent by the
    /// pipeline's share name).
    fn share_cluster(
        &self,
        pipeline_id: &str,
        cluster_arn: &str,
    ) -> impl Future<Output = Result<Share>> + Send;

    /// Accept the share in the target account, or `Share.NotReady`.
    fn accept_share(&self, share_arn: &str) -> impl Future<Output = Result<Accepted>> + Send;

    /// The share an invitation is for; `None` when this account does not
    /// know the invitation.
    fn share_of_invitation(
        &self,
        invitation_arn: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Delete a share; `false` when there was none.
    fn delete_share(&self, share_arn: &str) -> impl Future<Output = Result<bool>> + Send;

    /// The clone when it accepts connections, or `Clone.NotReady`.
    fn clone_status(
        &self,
        pipeline_id: &str,
        clone_id: &str,
    ) -> impl Future<Output = Result<CloneInfo>> + Send;
}
