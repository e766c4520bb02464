//! Checks that more than one step makes: whether the server can decode
//! logically (preflight reports it, prepare_source refuses to start
//! without it), and whether an existing slot of the pipeline's name is the
//! pipeline's (preflight reports a conflict, prepare_source refuses to
//! reuse it), and whose a triple's publication (so its slot) is by its
//! mark (cleanup and `status` touch only their own). Reads only.

use crate::error::{PreflightFailure, Result};
use crate::pg::server::ServerFacts;
use crate::pg::slot::{self, SlotInfo};
use crate::pipeline::{Claim, PipelineSpec};
use tokio_postgres::Client;

/// Whether the server can decode logically. `prepare_source` asks too: it
/// must not make a publication for a slot that cannot exist.
pub fn logical_decoding(facts: &ServerFacts) -> Option<PreflightFailure> {
    let failure = |detail: String, hint: &str| PreflightFailure {
        check: "logical_decoding".into(),
        detail,
        hint: hint.into(),
    };
    if let Some(rds) = &facts.rds_logical_replication {
        if !matches!(rds.as_str(), "on" | "1") {
            return Some(failure(
                format!("rds.logical_replication is {rds}"),
                "set rds.logical_replication = 1 in the cluster parameter group and reboot the writer",
            ));
        }
    }
    (facts.wal_level != "logical").then(|| {
        failure(
            format!("wal_level is {}", facts.wal_level),
            "set wal_level = logical and restart the server",
        )
    })
}

/// Why an existing slot of the pipeline's name is not the pipeline's, if it
/// isn't: wrong kind, plugin or database, temporary, or consumed by a WAL
/// sender that is not this pipeline's subscription.
pub async fn slot_conflict(
    source: &Client,
    info: &SlotInfo,
    database: &str,
    spec: &PipelineSpec,
) -> Result<Option<String>> {
    if info.slot_type != "logical" {
        return Ok(Some(format!("it is a {} slot", info.slot_type)));
    }
    if info.plugin.as_deref() != Some("pgoutput") {
        return Ok(Some(format!(
            "it uses plugin {:?}, not pgoutput",
            info.plugin.as_deref().unwrap_or("")
        )));
    }
    if info.database.as_deref() != Some(database) {
        return Ok(Some(format!(
            "it belongs to database {:?}, not {database:?}",
            info.database.as_deref().unwrap_or("")
        )));
    }
    if info.temporary {
        return Ok(Some("it is a temporary slot".into()));
    }
    if let Some(pid) = info.active_pid {
        // The apply worker connects with application_name = subscription name.
        let consumer = slot::consumer_name(source, pid).await?;
        if consumer.as_deref() != Some(spec.subscription.as_str()) {
            return Ok(Some(format!(
                "it is in use by process {pid} ({:?})",
                consumer.unwrap_or_default()
            )));
        }
    }
    Ok(None)
}

/// Whose the triple `spec` names is on `source`, by its publication's
/// mark; with the mark itself (none when there is no publication or no
/// comment).
pub async fn claim(source: &Client, spec: &PipelineSpec) -> Result<(Claim, Option<String>)> {
    let comment = crate::pg::publication::publication_info(source, &spec.publication)
        .await?
        .and_then(|info| info.comment);
    Ok((spec.claim_of(comment.as_deref()), comment))
}

/// Whether any of `slots` still exists on the source server (slots are
/// cluster-wide: one session sees them all); true when it cannot be read.
pub async fn any_slot_left(source: &Client, slots: &[&str]) -> bool {
    for name in slots {
        if slot::slot_info(source, name)
            .await
            .map_or(true, |s| s.is_some())
        {
            return true;
        }
    }
    false
}
