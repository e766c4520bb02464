//! The lag monitor: how far behind each pipeline is, and whether a slot —
//! any logical slot on a source, not only ours — is holding WAL that will
//! fill the disk.
//!
//! One connection per source server and one query: every logical slot on
//! it, with its lag (`pg_current_wal_lsn() - confirmed_flush_lsn`), the WAL
//! it retains (`- restart_lsn`), `wal_status` and `safe_wal_size` where the
//! server has them. A slot named as a registered pipeline's slot is that
//! pipeline's; any other is reported as not owned. One connection per
//! target and one query: the subscription's apply worker and its times
//! from `pg_stat_subscription`, and the schema changes it could not apply.
//!
//! Every source and target is read concurrently, each within a deadline.
//! One that cannot be read yields an error for its pipelines
//! ([`MonitorError`]), never a failure of the whole run. Reads only, but
//! for one write: on each source database it prunes the schema change
//! queue of what every slot has ([`crate::steps::prune_queue`]) and
//! reports its size.
//! [`emf`] turns a report into CloudWatch metrics; `clonesync local status`
//! prints the same report.

pub mod emf;

use crate::error::{Error, Result};
use crate::pg::{self, lag};
use crate::pipeline::{ClusterArn, Phase, PipelineRecord};
use crate::ports::{Clones, Cloud, ControlPlane, Coordination};
use crate::steps::follow_rotation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// How long one source or target may take before it counts as unreachable.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A logical slot on a source server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotReading {
    pub slot: String,
    pub database: Option<String>,
    /// The registered pipeline this slot belongs to; `None`: not
    /// clonesync's (the usual forgotten slot).
    pub pipeline: Option<String>,
    pub active: bool,
    /// `pg_current_wal_lsn() - confirmed_flush_lsn`; `None` before the
    /// slot is consistent.
    pub lag_bytes: Option<u64>,
    /// `pg_current_wal_lsn() - restart_lsn`: WAL the server keeps for it.
    pub retained_bytes: Option<u64>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// Bytes that can still be written before the slot is in danger of
    /// losing WAL; `None` when `max_slot_wal_keep_size` is unlimited.
    pub safe_wal_size: Option<i64>,
    /// Why PostgreSQL invalidated the slot (`wal_removed`, `idle_timeout`,
    /// ...; PostgreSQL 17+).
    #[serde(default)]
    pub invalidation_reason: Option<String>,
}

impl SlotReading {
    /// The slot lost WAL it needs (or was invalidated otherwise): its copy
    /// can never catch up and must be re-seeded.
    pub fn is_lost(&self) -> bool {
        self.wal_status.as_deref() == Some("lost") || self.invalidation_reason.is_some()
    }
}

/// Every logical slot of one source server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReading {
    /// The source cluster's identifier (from its ARN).
    pub source: String,
    pub slots: Vec<SlotReading>,
}

/// A pipeline's subscription on its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReading {
    pub pipeline: String,
    pub subscription: String,
    /// The subscription exists and is enabled.
    pub enabled: bool,
    /// An apply worker runs for it.
    pub apply_worker: bool,
    /// `now() - last_msg_receipt_time`: anything at all heard from the
    /// source (data or keepalive).
    pub seconds_since_last_message: Option<f64>,
    /// `now() - latest_end_time`: since the source last reported its WAL
    /// end to a caught-up worker. The source sends that report (a
    /// keepalive) only when it has nothing else to send, so this grows
    /// while the worker is behind; when idle it stays under half of
    /// `wal_sender_timeout`.
    pub apply_lag_seconds: Option<f64>,
    /// Errors the apply worker has met (`pg_stat_subscription_stats`,
    /// PostgreSQL 15+): a worker that loops on an error reads as running
    /// with lag zero, and only this count shows it.
    #[serde(default)]
    pub apply_errors: Option<i64>,
    /// Errors of table synchronization workers (PostgreSQL 15+).
    #[serde(default)]
    pub sync_errors: Option<i64>,
    /// Conflicts met while applying, by kind (`insert_exists`,
    /// `update_missing`, `delete_missing`, ...; PostgreSQL 18+, `None`
    /// before). Any conflict means the copy has diverged from the source:
    /// a row the source changed was missing or already present.
    #[serde(default)]
    pub conflicts: Option<BTreeMap<String, i64>>,
    /// Paused on purpose (`clonesync pause`): a disabled subscription and
    /// no worker are expected, not a fault.
    #[serde(default)]
    pub paused: bool,
    /// Schema changes the target could not apply (`clonesync.ddl_applied`
    /// rows still `pending`), counted on the first subscription of each
    /// database so a sum over subscriptions counts each once. `None`: the
    /// target does not apply schema changes.
    #[serde(default)]
    pub schema_changes_pending: Option<i64>,
    /// The sequence in scope closest to handing out a value the source
    /// has used, and how many more `nextval` calls the source may make
    /// before it does (negative: the target's sequence is behind the
    /// source's: `clonesync sequences` moves it ahead). Read on the first
    /// subscription of each database, like the pending count.
    #[serde(default)]
    pub smallest_sequence_headroom: Option<(String, i64)>,
    /// The schema change queue on the source database after this run
    /// pruned it ([`crate::steps::prune_queue`]); on the first
    /// subscription of each database, like the pending count. `None`: the
    /// database has no queue.
    #[serde(default)]
    pub source_queue: Option<crate::pg::ddl::QueueSize>,
    /// Schema changes the source captured that the copy has not received
    /// (in the stream, or behind a stopped apply); on the first
    /// subscription of each database, like the pending count.
    #[serde(default)]
    pub schema_changes_in_flight: Option<crate::pg::ddl::InFlight>,
    /// Schema change replays this run cancelled for running longer than
    /// [`crate::pg::ddl::REPLAY_TIMEOUT`] (each left pending on the copy);
    /// on the first subscription of each database.
    #[serde(default)]
    pub replays_cancelled: Option<i64>,
    /// The subscription's OID on the copy (names its table copies' slots
    /// on the source); `None` when it does not exist.
    #[serde(default)]
    pub subscription_oid: Option<u32>,
    /// Tables in scope PostgreSQL does not replicate (unlogged), as
    /// `schema.name`; on the first subscription of each database.
    #[serde(default)]
    pub tables_not_replicated: Option<Vec<String>>,
    /// With apply groups: tables in the pipeline's scope that no group's
    /// publication has (created after setup, before a refresh gave them a
    /// group), so the copy does not receive them.
    #[serde(default)]
    pub tables_not_published: Option<Vec<String>>,
    /// Tables the pipeline's publications publish whose UPDATE and DELETE
    /// fail on the source (`schema.name: why`): no identity (the capture
    /// could not give one, or schema changes are off), or on PostgreSQL
    /// 18 a generated column in the identity. Production writes fail
    /// while they are listed; on the first subscription of each database.
    #[serde(default)]
    pub tables_unwritable: Option<Vec<String>>,
}

impl TargetReading {
    /// Every conflict counted so far, all kinds together.
    pub fn conflicts_total(&self) -> Option<i64> {
        self.conflicts.as_ref().map(|c| c.values().sum())
    }

    /// One pipeline's subscriptions read as one (a pipeline with several
    /// triples): enabled and applying only when every one is, the worst
    /// lag and silence, errors and conflicts summed, paused when any is.
    /// `None` for no reading.
    pub fn combined(readings: &[&TargetReading]) -> Option<TargetReading> {
        let (first, rest) = readings.split_first()?;
        let mut all = (*first).clone();
        let worst = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let add = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        for r in rest {
            all.subscription = format!("{},{}", all.subscription, r.subscription);
            all.enabled &= r.enabled;
            all.apply_worker &= r.apply_worker;
            all.paused |= r.paused;
            all.seconds_since_last_message =
                worst(all.seconds_since_last_message, r.seconds_since_last_message);
            all.apply_lag_seconds = worst(all.apply_lag_seconds, r.apply_lag_seconds);
            all.apply_errors = add(all.apply_errors, r.apply_errors);
            all.sync_errors = add(all.sync_errors, r.sync_errors);
            all.schema_changes_pending = add(all.schema_changes_pending, r.schema_changes_pending);
            all.replays_cancelled = add(all.replays_cancelled, r.replays_cancelled);
            all.smallest_sequence_headroom = match (
                all.smallest_sequence_headroom.take(),
                r.smallest_sequence_headroom.clone(),
            ) {
                (Some(a), Some(b)) => Some(if b.1 < a.1 { b } else { a }),
                (a, b) => a.or(b),
            };
            all.schema_changes_in_flight =
                match (all.schema_changes_in_flight, r.schema_changes_in_flight) {
                    (Some(a), Some(b)) => Some(crate::pg::ddl::InFlight {
                        commands: a.commands + b.commands,
                        oldest_seconds: worst(a.oldest_seconds, b.oldest_seconds),
                    }),
                    (a, b) => a.or(b),
                };
            all.tables_not_replicated = match (
                all.tables_not_replicated.take(),
                r.tables_not_replicated.clone(),
            ) {
                (Some(mut a), Some(b)) => {
                    a.extend(b);
                    Some(a)
                }
                (a, b) => a.or(b),
            };
            all.tables_not_published = match (
                all.tables_not_published.take(),
                r.tables_not_published.clone(),
            ) {
                (Some(mut a), Some(b)) => {
                    a.extend(b);
                    Some(a)
                }
                (a, b) => a.or(b),
            };
            all.tables_unwritable =
                match (all.tables_unwritable.take(), r.tables_unwritable.clone()) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    (a, b) => a.or(b),
                };
            all.source_queue = match (all.source_queue, r.source_queue) {
                (Some(a), Some(b)) => Some(crate::pg::ddl::QueueSize {
                    pruned: a.pruned + b.pruned,
                    rows: a.rows + b.rows,
                    bytes: a.bytes + b.bytes,
                }),
                (a, b) => a.or(b),
            };
            if let Some(kinds) = &r.conflicts {
                let sum = all.conflicts.get_or_insert_with(BTreeMap::new);
                for (kind, n) in kinds {
                    *sum.entry(kind.clone()).or_default() += n;
                }
            }
        }
        Some(all)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Source,
    Target,
    /// The pipeline's registry record does not decode.
    Registry,
}

/// A database that could not be read, per pipeline it serves. The message
/// names the pipeline and the error, never a connection string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorError {
    pub pipeline: String,
    pub side: Side,
    /// The stable error name (`Transient.Database`, `Secret.Invalid`, ...).
    pub error_type: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    pub pipelines: Vec<String>,
    pub sources: Vec<SourceReading>,
    pub targets: Vec<TargetReading>,
    pub errors: Vec<MonitorError>,
    /// Database connections this run opened.
    pub connections: usize,
    pub took_ms: u64,
}

impl MonitorReport {
    /// Every slot with the source it is on.
    pub fn slots(&self) -> impl Iterator<Item = (&str, &SlotReading)> {
        self.sources
            .iter()
            .flat_map(|s| s.slots.iter().map(move |slot| (s.source.as_str(), slot)))
    }
}

/// The source's identifier in metrics: the cluster name of its ARN.
pub fn source_label(record: &PipelineRecord) -> String {
    ClusterArn::parse(&record.source.cluster_arn)
        .map(|arn| arn.cluster_id)
        .unwrap_or_else(|_| record.source.cluster_arn.clone())
}

/// Every logical slot on the server `client` is connected to, with the
/// pipeline each belongs to (`owners`: slot name → pipeline id).
pub async fn read_slots(
    client: &Client,
    owners: &BTreeMap<String, String>,
) -> Result<Vec<SlotReading>> {
    Ok(lag::slot_lags(client, None)
        .await?
        .into_iter()
        .map(|slot| SlotReading {
            pipeline: owners.get(&slot.slot).cloned(),
            lag_bytes: slot.lag_bytes(),
            retained_bytes: slot.retained_bytes(),
            slot: slot.slot,
            database: slot.database,
            active: slot.active,
            wal_status: slot.wal_status,
            safe_wal_size: slot.safe_wal_size,
            invalidation_reason: slot.invalidation_reason,
        })
        .collect())
}

/// The named subscriptions on the target `client` is connected to
/// (`subscriptions`: subscription name → pipeline id). A subscription that
/// does not exist reads as not enabled, no worker.
pub async fn read_subscriptions(
    client: &Client,
    subscriptions: &BTreeMap<String, String>,
) -> Result<Vec<TargetReading>> {
    let names: Vec<&str> = subscriptions.keys().map(String::as_str).collect();
    let found = lag::subscription_lags(client, &names).await?;
    Ok(subscriptions
        .iter()
        .map(|(name, pipeline)| {
            let lag = found.iter().find(|s| s.subscription == *name);
            TargetReading {
                pipeline: pipeline.clone(),
                subscription: name.clone(),
                enabled: lag.is_some_and(|s| s.enabled),
                apply_worker: lag.is_some_and(|s| s.apply_worker_pid.is_some()),
                seconds_since_last_message: lag.and_then(|s| s.seconds_since_last_message),
                apply_lag_seconds: lag.and_then(|s| s.apply_lag_seconds),
                apply_errors: lag.and_then(|s| s.apply_error_count),
                sync_errors: lag.and_then(|s| s.sync_error_count),
                conflicts: lag.and_then(|s| s.conflicts.clone()),
                paused: false,
                schema_changes_pending: None,
                smallest_sequence_headroom: None,
                source_queue: None,
                schema_changes_in_flight: None,
                replays_cancelled: None,
                subscription_oid: lag.map(|s| s.oid),
                tables_not_replicated: None,
                tables_not_published: None,
                tables_unwritable: None,
            }
        })
        .collect())
}

async fn within<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(DEADLINE, work)
        .await
        .unwrap_or_else(|_| {
            Err(Error::TransientDatabase {
                operation: "monitor".into(),
                message: format!("no answer within {DEADLINE:?}"),
                cause: None,
            })
        })
}

/// Pipelines that share a source server (same host and port), and the
/// login of the first.
struct SourceGroup<'r> {
    endpoint: crate::pg::Endpoint,
    records: Vec<&'r PipelineRecord>,
}

async fn check_source<C: Cloud>(cloud: &C, group: &SourceGroup<'_>) -> Result<SourceReading> {
    let first = group.records[0];
    let plane = cloud.clones().plane_of(first);
    let client = pg::connect(&group.endpoint, &plane.session()).await?;
    let owners = group
        .records
        .iter()
        .flat_map(|r| {
            r.triples()
                .into_iter()
                .map(|t| (t.slot.to_string(), r.pipeline.id.to_string()))
        })
        .collect();
    Ok(SourceReading {
        source: source_label(first),
        slots: read_slots(&client, &owners).await?,
    })
}

async fn check_target<C: Cloud>(cloud: &C, record: &PipelineRecord) -> Result<Vec<TargetReading>> {
    let plane = cloud.clones().plane_of(record);
    let info = record
        .clone_info
        .as_ref()
        .ok_or_else(|| Error::CloneNotReady {
            clone_id: record.clone_id().unwrap_or_default().to_string(),
            status: "no clone recorded yet".into(),
        })?;
    let endpoint = plane.clone_endpoint(info).await?;
    let previous = plane.previous_clone_endpoint(info).await?;
    let source_login = plane.source_login().await?;
    let source_endpoint = &source_login.endpoint;
    let sslmode = plane.session().tls.subscription_sslmode();
    let triples = record.triples();
    let paused = matches!(record.phase, Phase::Paused | Phase::SwitchedOver);
    let mut readings = Vec::new();
    // A subscription is read from its own database (pg_stat_subscription
    // covers the cluster, but names are unique only per database).
    for database in crate::pipeline::triples::databases_of(&triples) {
        let login = pg::Endpoint {
            dbname: database.to_string(),
            ..endpoint.clone()
        };
        let previous = previous.as_ref().map(|p| pg::Endpoint {
            dbname: database.to_string(),
            ..p.clone()
        });
        let client =
            follow_rotation::connect_clone(&login, previous.as_ref(), &plane.clone_session())
                .await?;
        let subscriptions = triples
            .iter()
            .filter(|t| t.database == database)
            .map(|t| (t.subscription.to_string(), record.pipeline.id.to_string()))
            .collect();
        let (pending, cancelled) = if pg::ddl::apply_installed(&client).await? {
            // Cancelled first, so the count below includes what it left
            // pending.
            let cancelled =
                pg::ddl::cancel_overdue_replays(&client, pg::ddl::REPLAY_TIMEOUT).await?;
            (
                Some(pg::ddl::pending_count(&client).await?),
                Some(cancelled),
            )
        } else {
            (None, None)
        };
        let source_database = pg::Endpoint {
            dbname: database.to_string(),
            ..source_endpoint.clone()
        };
        // A subscription made from an older version of the source secret
        // would be refused at its next reconnect: give it the current one.
        if record.phase != Phase::SwitchedOver {
            for triple in triples.iter().filter(|t| t.database == database) {
                match follow_rotation::reapply_connection(
                    &client,
                    &triple.subscription,
                    &source_database,
                    sslmode,
                    &source_login.version,
                )
                .await
                {
                    Ok(_) | Err(Error::SubscriptionMissing { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let source = pg::connect(&source_database, &plane.session()).await?;
        let scope = record.database_scope(database)?;
        let headroom = crate::steps::sequences::smallest_headroom(&source, &client, &scope).await?;
        let queue = crate::steps::prune_queue::run(&source).await?;
        let in_flight = pg::ddl::in_flight(&source, &client).await?;
        let not_replicated = crate::steps::checks::not_replicated(&source, &scope).await?;
        // One triple publishes its whole scope by construction; groups
        // publish lists, which a table made later is in none of.
        let groups: Vec<pg::PgName> = triples
            .iter()
            .filter(|t| t.database == database)
            .map(|t| t.publication.clone())
            .collect();
        let publications: Vec<String> = groups.iter().map(ToString::to_string).collect();
        let unwritable: Vec<String> =
            pg::server::unwritable_published_tables(&source, &publications)
                .await?
                .into_iter()
                .map(|(table, why)| format!("{table}: {why}"))
                .collect();
        let not_published = if groups.len() > 1 {
            Some(
                crate::steps::checks::not_published(&source, &record.pipeline.scope, &groups)
                    .await?
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };
        readings.extend(
            read_subscriptions(&client, &subscriptions)
                .await?
                .into_iter()
                .enumerate()
                .map(|(i, reading)| TargetReading {
                    paused,
                    schema_changes_pending: if i == 0 { pending } else { None },
                    smallest_sequence_headroom: if i == 0 { headroom.clone() } else { None },
                    source_queue: if i == 0 { queue } else { None },
                    schema_changes_in_flight: if i == 0 { in_flight } else { None },
                    replays_cancelled: if i == 0 { cancelled } else { None },
                    tables_not_replicated: (i == 0).then(|| not_replicated.clone()),
                    tables_not_published: if i == 0 { not_published.clone() } else { None },
                    tables_unwritable: (i == 0).then(|| unwritable.clone()),
                    ..reading
                }),
        );
    }
    Ok(readings)
}

fn error_for(pipeline: &str, side: Side, error: &Error) -> MonitorError {
    MonitorError {
        pipeline: pipeline.to_string(),
        side,
        error_type: error.name().to_string(),
        message: error.to_string(),
    }
}

/// Read every pipeline's source and target, concurrently.
pub async fn check<C: Cloud>(cloud: &C, records: &[PipelineRecord]) -> MonitorReport {
    let started = Instant::now();
    // Pipelines on one source server share its connection: the slot query
    // covers the whole server. Servers are told apart by where each
    // pipeline's login points.
    let logins = futures_util::future::join_all(records.iter().map(|record| async move {
        let plane = cloud.clones().plane_of(record);
        (record, within(plane.source_endpoint()).await)
    }))
    .await;
    let mut groups: BTreeMap<(String, u16), SourceGroup<'_>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (record, login) in logins {
        match login {
            Ok(endpoint) => groups
                .entry((endpoint.host.clone(), endpoint.port))
                .or_insert_with(|| SourceGroup {
                    endpoint,
                    records: Vec::new(),
                })
                .records
                .push(record),
            Err(e) => errors.push(error_for(record.pipeline.id.as_str(), Side::Source, &e)),
        }
    }
    let source_reads = futures_util::future::join_all(
        groups
            .values()
            .map(|group| async move { (group, within(check_source(cloud, group)).await) }),
    );
    let target_reads = futures_util::future::join_all(
        records
            .iter()
            .map(|record| async move { (record, within(check_target(cloud, record)).await) }),
    );
    let (source_reads, target_reads) = tokio::join!(source_reads, target_reads);

    let mut report = MonitorReport {
        pipelines: records.iter().map(|r| r.pipeline.id.to_string()).collect(),
        // One session per source server, and per database of each
        // pipeline one on its clone and one on the source (the sequences).
        connections: groups.len()
            + 2 * records
                .iter()
                .map(|r| crate::pipeline::triples::databases_of(&r.triples()).len())
                .sum::<usize>(),
        ..MonitorReport::default()
    };
    for (record, read) in target_reads {
        match read {
            Ok(readings) => report.targets.extend(readings),
            Err(e) => errors.push(error_for(record.pipeline.id.as_str(), Side::Target, &e)),
        }
    }
    for (group, read) in source_reads {
        match read {
            Ok(mut reading) => {
                let subscriptions: Vec<(u32, &str)> = report
                    .targets
                    .iter()
                    .filter(|t| {
                        group
                            .records
                            .iter()
                            .any(|r| r.pipeline.id.as_str() == t.pipeline)
                    })
                    .filter_map(|t| Some((t.subscription_oid?, t.pipeline.as_str())))
                    .collect();
                label_table_copy_slots(&mut reading.slots, &subscriptions);
                report.sources.push(reading)
            }
            Err(e) => {
                for record in &group.records {
                    errors.push(error_for(record.pipeline.id.as_str(), Side::Source, &e));
                }
            }
        }
    }
    for error in &errors {
        tracing::error!(pipeline = %error.pipeline, side = ?error.side, kind = %error.error_type, error = %error.message, "lag monitor could not read a database");
    }
    report.errors = errors;
    report.took_ms = started.elapsed().as_millis() as u64;
    report
}

/// A table copy's slot (`pg_<subscription oid>_sync_<relid>_<system id>`,
/// PostgreSQL's name for it) belongs to the pipeline on this source whose
/// subscription has that OID: it holds WAL like the pipeline's own slot
/// and goes when the copy ends or the table leaves the subscription.
/// `subscriptions`: (OID, pipeline) of the subscriptions of the pipelines
/// streaming from this source.
fn label_table_copy_slots(slots: &mut [SlotReading], subscriptions: &[(u32, &str)]) {
    for slot in slots.iter_mut().filter(|s| s.pipeline.is_none()) {
        let Some(oid) = table_copy_subscription(&slot.slot) else {
            continue;
        };
        slot.pipeline = subscriptions
            .iter()
            .find(|(o, _)| *o == oid)
            .map(|(_, pipeline)| pipeline.to_string());
    }
}

/// The subscription OID in a table copy slot's name, if it is one.
fn table_copy_subscription(slot: &str) -> Option<u32> {
    let rest = slot.strip_prefix("pg_")?;
    let (oid, rest) = rest.split_once("_sync_")?;
    let (relid, system) = rest.split_once('_')?;
    if relid.parse::<u32>().is_err() || system.parse::<u64>().is_err() {
        return None;
    }
    oid.parse().ok()
}

/// The lag monitor's run: every registered pipeline, then the report as
/// Embedded Metric Format lines (what the Lambda prints to stdout).
pub async fn run<C: Cloud>(cloud: &C, timestamp_ms: u64) -> Result<(MonitorReport, Vec<String>)> {
    let (records, unreadable) = cloud.coordination().scan_pipelines().await?;
    // A pipeline still being set up has nothing to read yet.
    let records: Vec<PipelineRecord> = records.into_iter().filter(|r| r.is_monitored()).collect();
    let mut report = check(cloud, &records).await;
    for (pipeline, error) in unreadable {
        tracing::error!(pipeline = %pipeline, kind = error.name(), error = %error, "lag monitor could not read a pipeline's registry record");
        report
            .errors
            .push(error_for(&pipeline, Side::Registry, &error));
        report.pipelines.push(pipeline);
    }
    let lines = emf::lines(&report, timestamp_ms);
    Ok((report, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str) -> SlotReading {
        SlotReading {
            slot: name.into(),
            database: Some("app".into()),
            pipeline: None,
            active: true,
            lag_bytes: Some(0),
            retained_bytes: Some(0),
            wal_status: None,
            safe_wal_size: None,
            invalidation_reason: None,
        }
    }

    #[test]
    fn a_table_copy_slot_is_named_as_its_subscriptions_pipeline() {
        let mut slots = vec![
            slot("pg_16405_sync_16390_7441234567890123456"),
            slot("pg_16499_sync_16390_7441234567890123456"),
            slot("pg_16405_sync_x_7441234567890123456"),
            slot("someone_elses"),
        ];
        label_table_copy_slots(&mut slots, &[(16405, "orders"), (16410, "audit")]);
        let owners: Vec<Option<&str>> = slots.iter().map(|s| s.pipeline.as_deref()).collect();
        assert_eq!(owners, vec![Some("orders"), None, None, None]);
        assert_eq!(table_copy_subscription("pg_1_sync_2_3"), Some(1));
        assert_eq!(table_copy_subscription("pg_1_sync_2"), None);
        assert_eq!(table_copy_subscription("clonesync_orders"), None);
    }
}
