//! Drop what the clone copied from the source and must not keep.
//!
//! A clone is a copy of the whole source, so it carries:
//! - logical replication slots — they would retain the clone's WAL forever;
//! - subscriptions — after the copy they would start pulling from whatever
//!   the source subscribed to; each is disabled, detached from its slot
//!   (`slot_name = NONE`, so dropping it does not touch the remote slot,
//!   which is someone else's) and dropped;
//! - the pipeline's publication, copied from the source;
//! - the schema change capture's event triggers: disabled, so DDL run on
//!   the copy is not queued as if it came from the source.
//!
//! Idempotent: it drops what is there. This pipeline's own subscription
//! (same name, attached to the pipeline's slot) is never touched, so running
//! it after the subscription exists is harmless. Only the current
//! database's subscriptions can be dropped from here.
//!
//! Leaves behind: nothing new; it only removes.

use crate::error::Result;
use crate::pg::{ddl, publication, slot, subscription};
use crate::pipeline::PipelineSpec;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cleaned {
    pub slots_dropped: Vec<String>,
    pub subscriptions_dropped: Vec<String>,
    pub publication_dropped: bool,
    #[serde(default)]
    pub capture_disabled: bool,
}

pub async fn run(clone: &Client, spec: &PipelineSpec) -> Result<Cleaned> {
    run_for(clone, std::slice::from_ref(spec)).await
}

/// [`run`] for the triples of one database (`specs`, each a triple of the
/// pipeline in the database `clone` is connected to): none of their own
/// subscriptions is dropped; every other subscription of the database,
/// every logical slot and each triple's publication is.
pub async fn run_for(clone: &Client, specs: &[PipelineSpec]) -> Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    for sub in subscription::subscriptions(clone).await? {
        let ours = specs.iter().any(|spec| {
            sub.name == spec.subscription.as_str()
                && sub.slot_name.as_deref() == Some(spec.slot.as_str())
        });
        if !ours && subscription::drop_subscription_keep_slot(clone, &sub.name).await? {
            cleaned.subscriptions_dropped.push(sub.name);
        }
    }
    for inherited in slot::logical_slots(clone).await? {
        if slot::drop_slot_if_exists(clone, &inherited.name).await? {
            cleaned.slots_dropped.push(inherited.name);
        }
    }
    cleaned.capture_disabled = ddl::disable_inherited_capture(clone).await?;
    for spec in specs {
        cleaned.publication_dropped |=
            publication::drop_publication_if_exists(clone, &spec.publication).await?;
    }
    tracing::info!(
        pipeline = %specs.first().map(|s| s.id.as_str()).unwrap_or_default(),
        slots = ?cleaned.slots_dropped,
        subscriptions = ?cleaned.subscriptions_dropped,
        publication = cleaned.publication_dropped,
        "inherited objects dropped from the clone"
    );
    Ok(cleaned)
}
