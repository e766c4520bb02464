//! Verify the handoff: the apply worker runs on the clone, the source slot
//! is active, no apply error or (PostgreSQL 18+) conflict has been counted,
//! and how far behind the subscriber is.
//!
//! Reads only; waits up to `wait` for the worker to start (it is launched
//! asynchronously after `ALTER SUBSCRIPTION ... ENABLE`). Leaves behind:
//! nothing.

use crate::error::{Error, Result};
use crate::pg::{lag, Lsn};
use crate::pipeline::PipelineSpec;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub apply_worker_pid: i32,
    pub slot_active: bool,
    pub source_lsn: Lsn,
    pub confirmed_flush_lsn: Lsn,
    /// `pg_current_wal_lsn() - confirmed_flush_lsn` on the source.
    pub lag_bytes: u64,
    pub apply_errors: i64,
    /// Conflicts counted (PostgreSQL 18+; 0 where the version has no
    /// counters).
    #[serde(default)]
    pub conflicts: i64,
}

/// One reading, without waiting: the lag monitor's reading
/// ([`crate::pg::lag`]) of this pipeline's slot and subscription.
pub async fn measure(source: &Client, clone: &Client, spec: &PipelineSpec) -> Result<Verification> {
    let slot = lag::slot_lags(source, Some(spec.slot.as_str()))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::SlotMissing {
            slot: spec.slot.to_string(),
        })?;
    let subscription = lag::subscription_lags(clone, &[spec.subscription.as_str()])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::SubscriptionMissing {
            subscription: spec.subscription.to_string(),
        })?;
    let confirmed = slot.confirmed_flush_lsn.unwrap_or(Lsn::from(0u64));
    Ok(Verification {
        apply_worker_pid: subscription.apply_worker_pid.unwrap_or(0),
        slot_active: slot.active,
        source_lsn: slot.current_lsn,
        confirmed_flush_lsn: confirmed,
        lag_bytes: confirmed.bytes_until(slot.current_lsn),
        apply_errors: subscription.apply_error_count.unwrap_or(0),
        conflicts: subscription.conflicts_total().unwrap_or(0),
    })
}

pub async fn run(
    source: &Client,
    clone: &Client,
    spec: &PipelineSpec,
    wait: Duration,
) -> Result<Verification> {
    let deadline = Instant::now() + wait;
    loop {
        let reading = measure(source, clone, spec).await?;
        if reading.apply_errors > 0 {
            return Err(Error::NotStreaming {
                detail: format!(
                    "the subscription reported {} apply error(s); see the target's server log",
                    reading.apply_errors
                ),
            });
        }
        if reading.conflicts > 0 {
            return Err(Error::NotStreaming {
                detail: format!(
                    "the subscription counted {} conflict(s) (pg_stat_subscription_stats): the copy differs from the source",
                    reading.conflicts
                ),
            });
        }
        if reading.apply_worker_pid != 0 && reading.slot_active {
            tracing::info!(pipeline = %spec.id, lag_bytes = reading.lag_bytes, "replication streaming");
            return Ok(reading);
        }
        if Instant::now() >= deadline {
            return Err(Error::NotStreaming {
                detail: format!(
                    "after {:?}: apply worker {}, source slot {}",
                    wait,
                    if reading.apply_worker_pid != 0 {
                        "running"
                    } else {
                        "absent"
                    },
                    if reading.slot_active {
                        "active"
                    } else {
                        "inactive"
                    }
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
