//! Undo what a run created, exactly that and nothing more: the one place
//! that decides what of a pipeline is dropped — a failed setup's cleanup,
//! a failed step's own undo ([`undo_made_now`], [`drop_subscription`]),
//! a teardown, a re-seed.
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
//! pipeline's own clone still goes. A publication goes only when it
//! carries this pipeline's mark: a user's publication that setup reused
//! stays.
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
        report.publication_dropped = done(
            publication::drop_marked_publication(source, &spec.publication, &spec.ownership_mark())
                .await,
        )
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

/// Undo what one failed `prepare_source` call made for one triple, and
/// only that (`made_now`): never a slot or publication that was there
/// before it, since a streaming pipeline's must survive a setup run again
/// that fails. Every part is attempted; failures are logged (the step's
/// own error is what the caller returns).
pub async fn undo_made_now(
    source: &Client,
    spec: &PipelineSpec,
    made_now: crate::steps::prepare_source::MadeNow,
) {
    if made_now.slot {
        if let Err(e) = slot::drop_slot_if_exists(source, spec.slot.as_str()).await {
            tracing::error!(slot = %spec.slot, error = %e, "could not drop the slot made by this failed call");
        }
    }
    if made_now.publication {
        if let Err(e) =
            publication::drop_marked_publication(source, &spec.publication, &spec.ownership_mark())
                .await
        {
            tracing::error!(publication = %spec.publication, error = %e, "could not drop the publication made by this failed call");
        }
    }
    if made_now.capture {
        if let Err(e) = ddl::remove_if_unused(source).await {
            tracing::error!(error = %e, "could not remove the schema change capture made by this failed call");
        }
    }
}

/// Drop a subscription a failed call made, keeping its slot (the slot is
/// the source's, dropped by its own undo). Whether one was dropped.
pub async fn drop_subscription(target: &Client, name: &str) -> Result<bool> {
    subscription::drop_subscription_keep_slot(target, name).await
}

/// Drop a triple's slot through another database's session (slots are
/// cluster-wide), when the triple's own database refuses the login: the
/// slot is what hurts production if left. Whether one was dropped.
pub async fn drop_slot(source: &Client, slot_name: &str) -> Result<bool> {
    slot::drop_slot_if_exists(source, slot_name).await
}
