//! Move the subscription's origin to the clone LSN, then enable it.
//!
//! The origin `pg_<subscription oid>` tells the source where to start
//! streaming; set to the clone LSN, the first transaction sent is the first
//! one the clone does not already contain.
//!
//! Idempotent and monotonic: the origin is advanced only while it is behind
//! the clone LSN and the subscription is disabled; it is never moved
//! backwards. A subscription found enabled with its origin still behind
//! was started by someone else before the handoff and may already have
//! applied rows twice: that is a `Target.SubscriptionConflict`, not
//! something to paper over.
//!
//! Leaves behind: a running subscription, consuming the source slot.

use crate::error::{Error, Result};
use crate::pg::{subscription, Lsn};
use crate::pipeline::PipelineSpec;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    pub origin: String,
    /// The origin's position after this step.
    pub origin_lsn: Lsn,
    pub advanced_now: bool,
    pub enabled_now: bool,
}

pub async fn run(clone: &Client, spec: &PipelineSpec, clone_lsn: Lsn) -> Result<Enabled> {
    let info = subscription::subscription_info(clone, spec.subscription.as_str())
        .await?
        .ok_or_else(|| Error::SubscriptionMissing {
            subscription: spec.subscription.to_string(),
        })?;
    let origin = info.origin_name();
    let progress = subscription::origin_progress(clone, &origin).await?;
    let behind = progress.is_none_or(|p| p < clone_lsn);
    let mut advanced_now = false;
    if behind {
        if info.enabled {
            return Err(Error::SubscriptionConflict {
                subscription: spec.subscription.to_string(),
                reason: format!(
                    "it is enabled while its origin ({}) is behind the clone LSN {clone_lsn}",
                    progress
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "unset".into())
                ),
            });
        }
        subscription::advance_origin(clone, &origin, clone_lsn).await?;
        advanced_now = true;
    }
    let enabled_now = !info.enabled;
    if enabled_now {
        subscription::enable(clone, spec.subscription.as_str()).await?;
    }
    let origin_lsn = subscription::origin_progress(clone, &origin)
        .await?
        .unwrap_or(clone_lsn);
    tracing::info!(pipeline = %spec.id, %origin, %origin_lsn, advanced_now, enabled_now, "subscription enabled");
    Ok(Enabled {
        origin,
        origin_lsn,
        advanced_now,
        enabled_now,
    })
}
