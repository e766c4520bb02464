//! Create the subscription on the clone: disabled, copying nothing,
//! attached to the slot prepared on the source.
//!
//! `copy_data = false` because the clone already has the data;
//! `create_slot = false` because the slot exists and its position matters;
//! `enabled = false` so the origin can be advanced to the clone LSN before
//! the first change is applied. The rest follow the target's version
//! ([`SubscriptionOptions::for_version`]: `streaming = parallel` from 16).
//!
//! Idempotent: a subscription of that name attached to the pipeline's slot
//! and publication is returned as is; one with other settings is a
//! `Target.SubscriptionConflict`.
//!
//! Schema changes: the trigger that applies the source's DDL as its queue
//! rows arrive is (re)installed on the clone, with the scope it filters
//! by, and the capture the clone inherited is disabled
//! ([`crate::pg::ddl::install_apply`]); with schema changes off only the
//! queue table is made sure to exist. Both are idempotent, and both refuse
//! a schema `clonesync` that is not clonesync's (`Database.SchemaNotOurs`). On PostgreSQL 15
//! the user triggers the clone inherited as ENABLE ALWAYS / ENABLE REPLICA
//! are set so they never fire during apply (15 runs them as the
//! subscription's superuser owner), each reported as a pending change,
//! and an event trigger on the copy sets back any its owners make there
//! later; 16+ creates the subscription with `run_as_owner = false`
//! instead. A second run finds nothing left to change.
//!
//! Before the first subscription, the workflow checks that the clone has
//! room for them ([`crate::steps::checks::subscriber_limits`] on the
//! clone's own settings, which on Aurora come from its parameter group):
//! `Clone.LimitsTooLow` otherwise, with nothing made.
//!
//! Leaves behind: a disabled subscription on the clone (recorded as
//! created) and the `clonesync` apply objects. It applies nothing until
//! `advance_and_enable`.

use crate::error::{Error, Result};
use crate::pg::subscription::{self, SubscriptionOptions};
use crate::pg::{ddl, server, Secret};
use crate::pipeline::PipelineSpec;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionCreated {
    pub subscription_oid: u32,
    pub origin: String,
    /// False when it already existed (a retried step).
    pub created_now: bool,
}

pub async fn run(
    clone: &Client,
    spec: &PipelineSpec,
    source_conninfo: &Secret,
) -> Result<SubscriptionCreated> {
    let mut created_now = false;
    let existing = subscription::subscription_info(clone, spec.subscription.as_str()).await?;
    let info = match existing {
        Some(info) => info,
        None => {
            let version = server::facts(clone).await?.version_num;
            subscription::create_subscription_disabled(
                clone,
                &spec.subscription,
                source_conninfo,
                &spec.publication,
                &spec.slot,
                SubscriptionOptions::for_version(version),
            )
            .await?;
            created_now = true;
            subscription::subscription_info(clone, spec.subscription.as_str())
                .await?
                .ok_or_else(|| Error::SubscriptionMissing {
                    subscription: spec.subscription.to_string(),
                })?
        }
    };
    if info.slot_name.as_deref() != Some(spec.slot.as_str())
        || info.publications != [spec.publication.as_str()]
    {
        return Err(Error::SubscriptionConflict {
            subscription: spec.subscription.to_string(),
            reason: format!(
                "it uses slot {:?} and publications {:?}",
                info.slot_name.unwrap_or_default(),
                info.publications
            ),
        });
    }
    ddl::install_apply(clone, &spec.scope, spec.schema_changes).await?;
    // Before the subscription is ever enabled: on 15 no trigger the clone
    // inherited may fire during apply (it would run as superuser).
    for change in ddl::neutralize_replica_triggers(clone).await? {
        tracing::warn!(pipeline = %spec.id, "{change}");
    }
    tracing::info!(pipeline = %spec.id, subscription = %spec.subscription, oid = info.oid, created_now, "subscription in place (disabled until advanced)");
    Ok(SubscriptionCreated {
        subscription_oid: info.oid,
        origin: info.origin_name(),
        created_now,
    })
}

/// Whether the pipeline's subscription exists yet on the clone.
pub async fn exists(clone: &Client, spec: &PipelineSpec) -> Result<bool> {
    Ok(
        subscription::subscription_info(clone, spec.subscription.as_str())
            .await?
            .is_some(),
    )
}

/// Whether the clone (any database of it: the limits are the server's)
/// has room for `new_subscriptions` more: `Clone.LimitsTooLow` listing
/// every shortfall with the clone's own figures otherwise.
pub async fn check_room(clone: &Client, clone_id: &str, new_subscriptions: i64) -> Result<()> {
    let facts = server::facts(clone).await?;
    let failures = crate::steps::checks::subscriber_limits(
        &facts,
        crate::steps::checks::Subscriber::Clone,
        new_subscriptions,
    );
    if failures.is_empty() {
        return Ok(());
    }
    Err(Error::CloneLimits {
        clone_id: clone_id.to_string(),
        failures,
    })
}
