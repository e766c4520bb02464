//! Sequences and the switchover: make the copy a standalone database the
//! application can move to.
//!
//! The `switchover` state machine runs, in order: [`start`] (the pipeline
//! streams; the target caught up, a quiet marker is taken: how far each
//! subscription has applied), a wait of `quiet_seconds`, [`quiet`]
//! (caught up again, no subscription applied anything new and no writing
//! transaction is open on the source), [`catch_up`] (every slot has confirmed the source's
//! last position: zero lag), `sync-sequences` ([`sequences`]), the
//! verification (`verify-plan`, a Map of `verify-table`, `verify-report`
//! requiring every table equal, else `Verify.Differs`), and [`finish`]
//! (the subscription disabled; with `drop_source_objects` also the
//! subscription, slot, publication and schema change capture dropped and
//! the pipeline deregistered, as a teardown that keeps the clone).
//! Every task reads the pipeline again. Before [`finish`] nothing changes
//! but the target's sequences, which only move forward; [`finish`] checks
//! the quiet and the catch-up once more and is idempotent like the pause
//! and the teardown it reuses.

use crate::error::{Error, Result};
use crate::pg::Lsn;
use crate::pipeline::{PipelineId, PipelineRecord};
use crate::ports::{Cloud, ControlPlane, Coordination};
use crate::steps;
use crate::steps::sequences::{self, Headroom, SequenceSync};
use crate::steps::verify_table::VerifyOptions;
use crate::workflow::registered;
use crate::workflow::{lifecycle, verify, Sessions};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

fn default_quiet_seconds() -> u64 {
    30
}

fn default_catch_up_seconds() -> u64 {
    300
}

/// The console input of `switchover.asl.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverRequest {
    pub pipeline_id: PipelineId,
    /// How long the source must stay without a writing transaction.
    #[serde(default = "default_quiet_seconds")]
    pub quiet_seconds: u64,
    /// The operator's word that the source has stopped writing: no quiet
    /// period is waited for or checked.
    #[serde(default)]
    pub source_stopped: bool,
    /// Also drop the subscription, and the slot and publication on the
    /// source, and deregister the pipeline (the clone stays).
    #[serde(default)]
    pub drop_source_objects: bool,
    #[serde(default)]
    pub headroom: Headroom,
    /// How long the target may take to reach zero lag.
    #[serde(default = "default_catch_up_seconds")]
    pub catch_up_seconds: u64,
    #[serde(default)]
    pub verify: VerifyOptions,
}

/// Where the pipeline stood when the quiet period began, the target
/// caught up: the source's insert position, and per subscription how far
/// it had applied (its origin's source position). An origin moves only
/// when a transaction that changed a replicated table (or ran a schema
/// change the capture queued) is applied; the server's own WAL, writes to
/// other databases and autovacuum never reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietMarker {
    pub lsn: Lsn,
    pub applied: Vec<(String, Option<Lsn>)>,
    /// Writing transactions open on the source at the marker.
    pub open_writers: i64,
}

/// What the switchover's tasks pass along.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switchover {
    pub pipeline_id: PipelineId,
    pub quiet_seconds: u64,
    pub source_stopped: bool,
    pub drop_source_objects: bool,
    pub headroom: Headroom,
    pub catch_up_seconds: u64,
    pub verify: VerifyOptions,
    pub marker: Option<QuietMarker>,
    /// WAL the source wrote during the quiet period without any writing
    /// transaction (checkpoints, snapshots of running transactions).
    #[serde(default)]
    pub quiet_wal_bytes: Option<u64>,
    /// The source position every slot had confirmed.
    #[serde(default)]
    pub caught_up_at: Option<Lsn>,
}

/// The input of `sync-sequences`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequencesRequest {
    pub pipeline_id: PipelineId,
    #[serde(default)]
    pub headroom: Headroom,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencesReport {
    pub pipeline_id: PipelineId,
    /// Per database.
    pub databases: Vec<(String, Vec<SequenceSync>)>,
}

impl SequencesReport {
    pub fn moved(&self) -> usize {
        self.databases
            .iter()
            .flat_map(|(_, s)| s)
            .filter(|s| s.moved)
            .count()
    }

    pub fn missing_on_target(&self) -> Vec<String> {
        self.databases
            .iter()
            .flat_map(|(d, s)| s.iter().map(move |s| (d, s)))
            .filter(|(_, s)| s.target_next.is_none())
            .map(|(d, s)| format!("{d}: {}", s.sequence))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchedOver {
    pub pipeline_id: PipelineId,
    pub subscriptions_disabled: bool,
    /// Dropped with `drop_source_objects` (the teardown's report).
    pub dropped: Option<crate::steps::cleanup::CleanupReport>,
    pub deregistered: bool,
}

/// Every sequence in scope on the target set ahead of the source's.
pub async fn sequences_pipeline<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    headroom: Headroom,
) -> Result<SequencesReport> {
    headroom.check()?;
    let info = registered::clone_info(record, "there is no copy to set sequences on")?;
    let mut sources = Sessions::source(plane).await?;
    let mut clones = Sessions::clone(plane, info).await?;
    let mut report = SequencesReport {
        pipeline_id: record.pipeline.id.clone(),
        databases: Vec::new(),
    };
    for database in crate::pipeline::triples::databases_of(&record.triples()) {
        let scope = record.database_scope(database)?;
        let source = sources.get(database).await?;
        let target = clones.get(database).await?;
        let synced = sequences::run(source, target, &scope, headroom).await?;
        report.databases.push((database.to_string(), synced));
    }
    Ok(report)
}

/// `sync-sequences`.
pub async fn sequences<C: Cloud>(cloud: &C, request: &SequencesRequest) -> Result<SequencesReport> {
    let record = registered::load(cloud, &request.pipeline_id).await?;
    sequences_pipeline(
        &registered::plane(cloud, &record),
        &record,
        request.headroom,
    )
    .await
}

/// The quiet marker, once the target has caught up with the source.
async fn marker<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    limit: Duration,
) -> Result<QuietMarker> {
    wait_caught_up(plane, record, limit).await?;
    let info = registered::clone_info(record, "there is no copy to switch over to")?;
    let mut clones = Sessions::clone(plane, info).await?;
    let mut applied = Vec::new();
    for triple in record.triples() {
        let target = clones.get(&triple.database).await?;
        let name = triple.subscription.as_str();
        let progress = steps::switchover::applied(target, name).await?;
        applied.push((name.to_string(), progress));
    }
    let mut sources = Sessions::source(plane).await?;
    let now = steps::switchover::write_position(sources.get(record.source.login_database()).await?)
        .await?;
    Ok(QuietMarker {
        lsn: now.lsn,
        applied,
        open_writers: now.open_writers,
    })
}

/// Nothing replicated was written since the marker, and no writing
/// transaction was open then or is now; the WAL written since, in bytes.
/// Else `Switchover.SourceWriting`.
async fn still_quiet<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    since: &QuietMarker,
    limit: Duration,
) -> Result<u64> {
    let now = marker(plane, record, limit).await?;
    let wal = since.lsn.bytes_until(now.lsn);
    let moved: Vec<String> = now
        .applied
        .iter()
        .filter(|(name, progress)| {
            since
                .applied
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p)
                != Some(progress)
        })
        .map(|(name, _)| name.clone())
        .collect();
    if since.open_writers > 0 || now.open_writers > 0 || !moved.is_empty() {
        return Err(Error::SourceWriting {
            detail: format!(
                "since the quiet marker at {}: {} writing transaction(s) open then, {} open now; subscription(s) that applied new writes: {}; {wal} bytes of WAL. Stop the application's writes (pg_stat_activity names the sessions), or give source_stopped to vouch that they are stopped",
                since.lsn,
                since.open_writers,
                now.open_writers,
                if moved.is_empty() { "none".to_string() } else { moved.join(", ") }
            ),
        });
    }
    Ok(wal)
}

/// `switchover-start`: the request checked, the pipeline streaming, the
/// quiet marker taken (unless the operator says the source has stopped).
pub async fn start<C: Cloud>(cloud: &C, request: &SwitchoverRequest) -> Result<Switchover> {
    let mut problems = Vec::new();
    if request.quiet_seconds > 3_600 {
        problems.push(format!(
            "quiet_seconds {} is over 3600",
            request.quiet_seconds
        ));
    }
    if !(1..=840).contains(&request.catch_up_seconds) {
        problems.push(format!(
            "catch_up_seconds {} is not 1..=840 (a Lambda runs at most 15 minutes)",
            request.catch_up_seconds
        ));
    }
    if !problems.is_empty() {
        return Err(Error::InvalidInput { problems });
    }
    request.headroom.check()?;
    request.verify.check()?;
    let record = registered::load(cloud, &request.pipeline_id).await?;
    let plane = registered::plane(cloud, &record);
    verify::check_streaming(&plane, &record).await?;
    let marker = if request.source_stopped {
        None
    } else {
        Some(
            marker(
                &plane,
                &record,
                Duration::from_secs(request.catch_up_seconds),
            )
            .await?,
        )
    };
    tracing::info!(pipeline = %request.pipeline_id, ?marker, "switchover started");
    Ok(Switchover {
        pipeline_id: request.pipeline_id.clone(),
        quiet_seconds: request.quiet_seconds,
        source_stopped: request.source_stopped,
        drop_source_objects: request.drop_source_objects,
        headroom: request.headroom,
        catch_up_seconds: request.catch_up_seconds,
        verify: request.verify.clone(),
        marker,
        quiet_wal_bytes: None,
        caught_up_at: None,
    })
}

/// `switchover-quiet`: after the quiet period, nothing replicated was
/// written since the marker and no writing transaction is open; else
/// `Switchover.SourceWriting`.
pub async fn quiet<C: Cloud>(cloud: &C, switchover: &Switchover) -> Result<Switchover> {
    let Some(marker) = &switchover.marker else {
        return Ok(switchover.clone());
    };
    let record = registered::load(cloud, &switchover.pipeline_id).await?;
    let wal = still_quiet(
        &registered::plane(cloud, &record),
        &record,
        marker,
        Duration::from_secs(switchover.catch_up_seconds),
    )
    .await?;
    Ok(Switchover {
        quiet_wal_bytes: Some(wal),
        ..switchover.clone()
    })
}

/// Wait until every slot of the pipeline confirmed the source's current
/// position; `Switchover.Lagging` after `limit`. That position.
async fn wait_caught_up<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    limit: Duration,
) -> Result<Lsn> {
    let mut sources = Sessions::source(plane).await?;
    let started = Instant::now();
    let triples = record.triples();
    for database in crate::pipeline::triples::databases_of(&triples) {
        let slots: Vec<String> = triples
            .iter()
            .filter(|t| t.database == database)
            .map(|t| t.slot.to_string())
            .collect();
        let client = sources.get(database).await?;
        let (goal, mark) = steps::switchover::catch_up_goal(client).await?;
        loop {
            let confirmed = steps::switchover::least_confirmed(client, &slots).await?;
            if confirmed.is_some_and(|c| c >= mark) {
                break;
            }
            if started.elapsed() >= limit {
                return Err(Error::Lagging {
                    detail: format!(
                        "database {database}: slots {} confirmed {} of {goal} after {limit:?}",
                        slots.join(", "),
                        confirmed.map_or("nothing".to_string(), |c| c.to_string())
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    steps::switchover::insert_position(sources.get(record.source.login_database()).await?).await
}

/// `switchover-catch-up`: wait until every slot of the pipeline confirmed
/// the source's current position; `Switchover.Lagging` after
/// `catch_up_seconds`.
pub async fn catch_up<C: Cloud>(cloud: &C, switchover: &Switchover) -> Result<Switchover> {
    let record = registered::load(cloud, &switchover.pipeline_id).await?;
    let plane = registered::plane(cloud, &record);
    verify::check_streaming(&plane, &record).await?;
    let at = wait_caught_up(
        &plane,
        &record,
        Duration::from_secs(switchover.catch_up_seconds),
    )
    .await?;
    Ok(Switchover {
        caught_up_at: Some(at),
        ..switchover.clone()
    })
}

/// `switchover-finish`: the subscription disabled (the pipeline paused),
/// and with `drop_source_objects` what a teardown keeping the clone drops.
pub async fn finish<C: Cloud>(cloud: &C, switchover: &Switchover) -> Result<SwitchedOver> {
    let id = &switchover.pipeline_id;
    let record = match registered::load(cloud, id).await {
        Ok(record) => record,
        // Deregistered by a finish that ran before: done.
        Err(Error::PipelineUnknown { .. }) if switchover.drop_source_objects => {
            return Ok(SwitchedOver {
                pipeline_id: id.clone(),
                subscriptions_disabled: true,
                dropped: None,
                deregistered: true,
            })
        }
        Err(e) => return Err(e),
    };
    // Verification took time: the source must still be quiet, and the
    // target caught up, at the moment the subscription stops. (A finish
    // run again after it paused the pipeline has nothing left to check.)
    if record.phase == crate::pipeline::Phase::Streaming {
        let plane = registered::plane(cloud, &record);
        if let Some(marker) = &switchover.marker {
            still_quiet(
                &plane,
                &record,
                marker,
                Duration::from_secs(switchover.catch_up_seconds),
            )
            .await?;
        }
        wait_caught_up(
            &plane,
            &record,
            Duration::from_secs(switchover.catch_up_seconds),
        )
        .await?;
    }
    let paused = lifecycle::set_paused(
        cloud,
        &lifecycle::PauseInput {
            pipeline_id: id.clone(),
        },
        lifecycle::Pausing::Pause,
    )
    .await;
    match paused {
        Ok(_) => {
            if let Some(record) = cloud.coordination().get_pipeline(id).await? {
                if record.phase != crate::pipeline::Phase::SwitchedOver {
                    let expected = crate::pipeline::Expected::as_read(&record);
                    cloud
                        .coordination()
                        .put_pipeline(
                            &crate::pipeline::PipelineRecord {
                                phase: crate::pipeline::Phase::SwitchedOver,
                                ..record
                            },
                            &expected,
                        )
                        .await?;
                }
            }
        }
        // A finish cut short after it dropped the subscription.
        Err(Error::SubscriptionMissing { .. }) if switchover.drop_source_objects => {}
        Err(e) => return Err(e),
    }
    if !switchover.drop_source_objects {
        tracing::info!(pipeline = %id, "switched over: subscription disabled, slot kept");
        return Ok(SwitchedOver {
            pipeline_id: id.clone(),
            subscriptions_disabled: true,
            dropped: None,
            deregistered: false,
        });
    }
    let teardown = lifecycle::Teardown {
        pipeline_id: id.clone(),
        delete_clone: false,
        delete_share: false,
        record,
    };
    let dropped = lifecycle::drop_databases(cloud, &teardown).await?;
    lifecycle::deregister(cloud, &teardown).await?;
    tracing::info!(pipeline = %id, "switched over: subscription, slot and publication dropped, pipeline deregistered");
    Ok(SwitchedOver {
        pipeline_id: id.clone(),
        subscriptions_disabled: true,
        dropped: Some(dropped),
        deregistered: true,
    })
}
