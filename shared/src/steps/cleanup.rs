//! Undo what a run created, exactly that and nothing more.
//!
//! Order: the subscription on the clone first (detached from its slot, so
//! the drop does not need the source) with the clone's schema change apply
//! objects, then the source slot — the one object that hurts production if
//! left behind, since it retains WAL until the disk fills — then the
//! publication, with the schema change capture once no pipeline's
//! publication is left in the database, then the clone.
//!
//! Every part is attempted even when an earlier one fails, and an
//! unreachable target never stops the source slot from being dropped (its
//! WAL sender is terminated first if the subscriber is still attached) —
//! except that a slot that could not be dropped keeps its publication,
//! whose mark proves the slot this pipeline's when cleanup runs again.
//!
//! Only this setup's: a triple whose publication carries another setup's
//! mark (another work directory or deployment of the same id, or another
//! pipeline) keeps its slot and publication; the subscription on this
//! pipeline's own clone still goes.
//! Idempotent: dropping what is already gone is success.

use crate::error::Result;
use crate::pg::{ddl, publication, slot, subscription};
use crate::pipeline::{PipelineSpec, UndoPlan};
use crate::ports::ControlPlane;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    pub subscription_dropped: bool,
    pub slot_dropped: bool,
    pub publication_dropped: bool,
    pub clone_deleted: bool,
    /// The schema change capture left the source database with its last
    /// pipeline.
    #[serde(default)]
    pub capture_removed: bool,
}

/// Undo `created`'s databases and clone (the share is the workflow's: it
/// is an account-level resource, not the control plane's).
pub async fn run<P: ControlPlane>(
    plane: &P,
    source: &Client,
    target: Option<&Client>,
    spec: &PipelineSpec,
    created: &UndoPlan,
) -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    let mut first_error = None;
    // The outcome of one action: whether it did something, or `None`
    // when it failed (the first failure is returned at the end).
    let mut done = |result: Result<bool>| match result {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::error!(pipeline = %spec.id, error = %e, kind = e.name(), "cleanup action failed");
            first_error.get_or_insert(e);
            None
        }
    };
    if created.subscription {
        if let Some(target) = target {
            report.subscription_dropped = done(
                subscription::drop_subscription_keep_slot(target, spec.subscription.as_str()).await,
            )
            .unwrap_or(false);
            // A copy nothing feeds any more must not apply or capture.
            done(ddl::remove(target).await);
        }
    }
    // The triple's publication says whose its slot is: marked by another
    // setup (of this id or another pipeline), neither is this one's.
    let theirs = done(
        publication::publication_info(source, &spec.publication)
            .await
            .map(|info| {
                spec.claim_of(info.as_ref().and_then(|i| i.comment.as_deref()))
                    .is_theirs()
            }),
    )
    .unwrap_or(true);
    if theirs {
        tracing::warn!(pipeline = %spec.id, publication = %spec.publication, slot = %spec.slot, "the publication is not readable or carries another setup's mark: its slot and publication are left alone");
    }
    let mut slot_kept = false;
    if created.slot && !theirs {
        match done(slot::drop_slot_if_exists(source, spec.slot.as_str()).await) {
            Some(dropped) => report.slot_dropped = dropped,
            None => slot_kept = true,
        }
    }
    // A slot that could not be dropped keeps its publication: the mark
    // is what proves the slot this pipeline's when cleanup runs again.
    if created.publication && !theirs && !slot_kept {
        report.publication_dropped =
            done(publication::drop_publication_if_exists(source, &spec.publication).await)
                .unwrap_or(false);
        report.capture_removed = done(ddl::remove_if_unused(source).await).unwrap_or(false);
    }
    if let Some(clone_id) = &created.clone {
        report.clone_deleted = done(plane.delete_clone(clone_id).await).unwrap_or(false);
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!(pipeline = %spec.id, ?report, "cleanup done");
            Ok(report)
        }
    }
}
