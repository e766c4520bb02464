//! Checks that more than one step makes: whether the server can decode
//! logically (preflight reports it, prepare_source refuses to start
//! without it), and whether an existing slot of the pipeline's name is the
//! pipeline's (preflight reports a conflict, prepare_source refuses to
//! reuse it), and whose a triple's publication (so its slot) is by its
//! mark (cleanup and `status` touch only their own), and whether a
//! subscriber has room for the pipeline's subscriptions (preflight asks of
//! the source's settings the clone will inherit, create_subscription of
//! the clone itself). Reads only.

use crate::error::{PreflightFailure, Result};
use crate::pg::server::{self, ServerFacts};
use crate::pg::slot::{self, SlotInfo};
use crate::pipeline::{Claim, PipelineSpec, Scope};
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

/// The tables of `scope` PostgreSQL does not replicate: unlogged ones,
/// whose changes are not in the WAL (`FOR ALL TABLES` and `TABLES IN
/// SCHEMA` leave them out; a listed one is refused by preflight, and named
/// here when it was set unlogged later). On the copy they keep what the
/// clone had, which is nothing: an unlogged table starts empty. As
/// `schema.name`, quoted where needed.
pub async fn not_replicated(source: &Client, scope: &Scope) -> Result<Vec<String>> {
    match scope {
        Scope::AllTables => server::unlogged_tables(source, None).await,
        Scope::Schemas { schemas } => {
            let names: Vec<String> = schemas.iter().map(|s| s.as_str().to_string()).collect();
            server::unlogged_tables(source, Some(&names)).await
        }
        Scope::Tables { tables } => {
            let names: Vec<String> = tables
                .iter()
                .map(|t| t.schema.as_str().to_string())
                .collect();
            let listed: Vec<String> = tables
                .iter()
                .map(|t| format!("{}.{}", t.schema.as_str(), t.name.as_str()))
                .collect();
            Ok(server::unlogged_tables_named(source, &names, &listed).await?)
        }
    }
}

/// The tables of `scope` (permanent, outside clonesync's own schema) that
/// none of `publications` publishes, so the copy never receives them, as
/// `schema.name`: with apply groups, a table created after setup is in no
/// group's list until the refresh gives it one.
pub async fn not_published(
    source: &Client,
    scope: &Scope,
    publications: &[crate::pg::PgName],
) -> Result<Vec<crate::pg::TableName>> {
    let names: Vec<String> = publications
        .iter()
        .map(|p| p.as_str().to_string())
        .collect();
    let found = match scope {
        Scope::AllTables => server::tables_not_published(source, None, None, &names).await?,
        Scope::Schemas { schemas } => {
            let list: Vec<String> = schemas.iter().map(|s| s.as_str().to_string()).collect();
            server::tables_not_published(source, Some(&list), None, &names).await?
        }
        Scope::Tables { tables } => {
            let pairs: Vec<(String, String)> = tables
                .iter()
                .map(|t| (t.schema.as_str().to_string(), t.name.as_str().to_string()))
                .collect();
            server::tables_not_published(source, None, Some(&pairs), &names).await?
        }
    };
    Ok(found
        .into_iter()
        .filter_map(|(schema, name)| crate::pg::TableName::new(&schema, &name).ok())
        .collect())
}

/// Whose settings a subscriber check read, which says where to raise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscriber {
    /// The source's, which a local clone inherits (checked at preflight,
    /// before the clone exists).
    SourceInherited,
    /// A target server given to preflight.
    Target,
    /// The clone's own, once it exists: on Aurora they come from the clone's
    /// cluster parameter group, not from the source.
    Clone,
}

impl Subscriber {
    fn whose(self) -> &'static str {
        match self {
            Subscriber::SourceInherited => "source (the clone inherits it)",
            Subscriber::Target => "target",
            Subscriber::Clone => "clone",
        }
    }

    fn raise(self, setting: &str) -> String {
        match self {
            Subscriber::Clone => format!(
                "raise {setting} in the clone's DB cluster parameter group (clone.db_cluster_parameter_group; \
                 without one the target account's default group applies) and run the setup again"
            ),
            _ => format!("raise {setting} on the target (restart needed)"),
        }
    }
}

/// Whether the subscriber has room for `new_subscriptions` more: an apply
/// worker each (`max_logical_replication_workers`), background workers for
/// them and the launcher (`max_worker_processes`), and a replication
/// origin each (`max_active_replication_origins` from PostgreSQL 18,
/// `max_replication_slots` before). Every shortfall is listed.
pub fn subscriber_limits(
    facts: &ServerFacts,
    subscriber: Subscriber,
    new_subscriptions: i64,
) -> Vec<PreflightFailure> {
    let whose = subscriber.whose();
    let mut failures = Vec::new();
    let mut fail = |check: &str, detail: String, setting: &str| {
        failures.push(PreflightFailure {
            check: check.into(),
            detail,
            hint: subscriber.raise(setting),
        })
    };
    let workers_needed = facts.subscriptions + new_subscriptions;
    if facts.max_logical_replication_workers < workers_needed {
        fail(
            "logical_replication_workers",
            format!(
                "max_logical_replication_workers = {} on the {whose}; {workers_needed} needed",
                facts.max_logical_replication_workers
            ),
            "max_logical_replication_workers",
        );
    }
    // The logical replication launcher and each apply worker are background
    // workers.
    if facts.max_worker_processes < workers_needed + 1 {
        fail(
            "worker_processes",
            format!(
                "max_worker_processes = {} on the {whose}; {} needed",
                facts.max_worker_processes,
                workers_needed + 1
            ),
            "max_worker_processes",
        );
    }
    let (setting, origins_max) = match facts.max_active_replication_origins {
        Some(max) => ("max_active_replication_origins", max),
        None => ("max_replication_slots", facts.max_replication_slots),
    };
    if origins_max < facts.origins + new_subscriptions {
        fail(
            "replication_origins",
            format!(
                "{setting} = {origins_max} on the {whose} with {} origin(s) in use; {new_subscriptions} more needed",
                facts.origins
            ),
            setting,
        );
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roomy() -> ServerFacts {
        ServerFacts {
            max_logical_replication_workers: 4,
            max_worker_processes: 8,
            max_replication_slots: 10,
            subscriptions: 1,
            origins: 1,
            ..ServerFacts::default()
        }
    }

    fn checks(failures: &[PreflightFailure]) -> Vec<&str> {
        failures.iter().map(|f| f.check.as_str()).collect()
    }

    #[test]
    fn room_for_every_subscription_is_no_failure() {
        assert!(subscriber_limits(&roomy(), Subscriber::Clone, 3).is_empty());
    }

    #[test]
    fn every_shortfall_is_listed_with_the_subscribers_own_figures() {
        let facts = ServerFacts {
            max_logical_replication_workers: 2,
            max_worker_processes: 2,
            max_replication_slots: 2,
            ..roomy()
        };
        let failures = subscriber_limits(&facts, Subscriber::Clone, 2);
        assert_eq!(
            checks(&failures),
            [
                "logical_replication_workers",
                "worker_processes",
                "replication_origins"
            ]
        );
        assert_eq!(
            failures[0].detail,
            "max_logical_replication_workers = 2 on the clone; 3 needed"
        );
        assert_eq!(
            failures[1].detail,
            "max_worker_processes = 2 on the clone; 4 needed"
        );
        assert!(failures[2].detail.starts_with("max_replication_slots = 2"));
        assert!(failures
            .iter()
            .all(|f| f.hint.contains("clone.db_cluster_parameter_group")));
        // One more than the limit is exactly enough.
        assert!(subscriber_limits(&facts, Subscriber::Clone, 1)
            .iter()
            .all(|f| f.check == "worker_processes"));
    }

    #[test]
    fn origins_are_bounded_by_their_own_setting_from_18() {
        let facts = ServerFacts {
            max_active_replication_origins: Some(1),
            ..roomy()
        };
        let failures = subscriber_limits(&facts, Subscriber::SourceInherited, 1);
        assert_eq!(checks(&failures), ["replication_origins"]);
        assert!(failures[0].detail.starts_with(
            "max_active_replication_origins = 1 on the source (the clone inherits it)"
        ));
        assert!(failures[0].hint.contains("restart needed"));
    }
}
