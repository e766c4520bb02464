//! Read the clone's start LSN and check it lies where the handoff is exact.
//!
//! `slot consistent LSN <= clone LSN <= source flush LSN`: below the lower
//! bound the slot cannot decode transactions the clone lacks (lost rows);
//! above the upper bound the clone claims WAL the source never flushed
//! (the subscription would skip or repeat). Outside: `Clone.LsnOutOfRange`.
//!
//! Reads only, so running it again is harmless. Once this pipeline's
//! subscription has applied past the clone LSN the handoff has happened;
//! the check then reports `already_attached` instead of comparing against a
//! slot that has moved on.
//!
//! Leaves behind: nothing.

use crate::error::{Error, Result};
use crate::pg::{slot, subscription, wal, Lsn};
use crate::pipeline::{CloneInfo, PipelineSpec};
use crate::ports::ControlPlane;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneLsn {
    pub clone_lsn: Lsn,
    pub slot_consistent_lsn: Lsn,
    pub source_flush_lsn: Option<Lsn>,
    pub already_attached: bool,
}

pub async fn run<P: ControlPlane>(
    plane: &P,
    source: &Client,
    clone: &Client,
    spec: &PipelineSpec,
    clone_info: &CloneInfo,
    slot_consistent_lsn: Lsn,
) -> Result<CloneLsn> {
    let clone_lsn = plane.clone_start_lsn(clone_info, clone).await?;
    if let Some(sub) = subscription::subscription_info(clone, spec.subscription.as_str()).await? {
        let progress = subscription::origin_progress(clone, &sub.origin_name()).await?;
        if sub.slot_name.as_deref() == Some(spec.slot.as_str())
            && progress.is_some_and(|p| p >= clone_lsn)
        {
            return Ok(CloneLsn {
                clone_lsn,
                slot_consistent_lsn,
                source_flush_lsn: None,
                already_attached: true,
            });
        }
    }
    if slot::slot_info(source, spec.slot.as_str()).await?.is_none() {
        return Err(Error::SlotMissing {
            slot: spec.slot.to_string(),
        });
    }
    let source_flush_lsn = wal::flush_lsn(source).await?;
    check_range(clone_lsn, slot_consistent_lsn, source_flush_lsn)?;
    tracing::info!(pipeline = %spec.id, %clone_lsn, %slot_consistent_lsn, %source_flush_lsn, "clone LSN in range");
    Ok(CloneLsn {
        clone_lsn,
        slot_consistent_lsn,
        source_flush_lsn: Some(source_flush_lsn),
        already_attached: false,
    })
}

/// The invariant itself, apart from any I/O.
pub fn check_range(clone_lsn: Lsn, slot_consistent_lsn: Lsn, source_flush_lsn: Lsn) -> Result<()> {
    if slot_consistent_lsn <= clone_lsn && clone_lsn <= source_flush_lsn {
        Ok(())
    } else {
        Err(Error::CloneLsnOutOfRange {
            clone_lsn,
            slot_consistent_lsn,
            source_flush_lsn,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_outside_is_named() {
        let (lo, hi) = (Lsn::from(100u64), Lsn::from(200u64));
        assert!(check_range(lo, lo, hi).is_ok());
        assert!(check_range(hi, lo, hi).is_ok());
        assert_eq!(
            check_range(Lsn::from(99u64), lo, hi).unwrap_err().name(),
            "Clone.LsnOutOfRange"
        );
        assert_eq!(
            check_range(Lsn::from(201u64), lo, hi).unwrap_err().name(),
            "Clone.LsnOutOfRange"
        );
    }
}
