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
//! WAL sender is terminated first if the subscriber is still attached).
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
    let mut keep = |result: Result<bool>, flag: &mut bool| match result {
        Ok(done) => *flag = done,
        Err(e) => {
            tracing::error!(pipeline = %spec.id, error = %e, kind = e.name(), "cleanup action failed");
            first_error.get_or_insert(e);
        }
    };
    if created.subscription {
        if let Some(target) = target {
            keep(
                subscription::drop_subscription_keep_slot(target, spec.subscription.as_str()).await,
                &mut report.subscription_dropped,
            );
            // A copy nothing feeds any more must not apply or capture.
            let mut removed = false;
            keep(ddl::remove(target).await, &mut removed);
        }
    }
    if created.slot {
        keep(
            slot::drop_slot_if_exists(source, spec.slot.as_str()).await,
            &mut report.slot_dropped,
        );
    }
    if created.publication {
        keep(
            publication::drop_publication_if_exists(source, &spec.publication).await,
            &mut report.publication_dropped,
        );
        keep(
            ddl::remove_if_unused(source).await,
            &mut report.capture_removed,
        );
    }
    if let Some(clone_id) = &created.clone {
        keep(
            plane.delete_clone(clone_id).await,
            &mut report.clone_deleted,
        );
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!(pipeline = %spec.id, ?report, "cleanup done");
            Ok(report)
        }
    }
}
