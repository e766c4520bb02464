//! The resource share: the source cluster shared with the target account.
//! AWS: RAM (`crate::aws::ram`); locally: the local crate's cloud, which
//! plays RAM with its invitation delay and events.

use crate::error::Result;
use crate::pipeline::{Accepted, Share};
use std::future::Future;

pub trait ResourceShare: Sync {
    /// Share the source cluster with the target account (idempotent by the
    /// pipeline's share name; a retried request of the same setup,
    /// `setup_mark`, is the same request to RAM).
    fn share_cluster(
        &self,
        pipeline_id: &str,
        setup_mark: &str,
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
}
