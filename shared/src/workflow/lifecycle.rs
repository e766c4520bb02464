//! A pipeline's life after (and around) setup: its inventory in the
//! registry, and what `statemachine/teardown.asl.json` runs.
//!
//! The inventory is written when setup starts making things (the
//! `RecordInventory` state, [`record_inventory`]), completed when it
//! streams ([`super::register`]) and removed when a failed setup has been
//! cleaned up ([`forget_failed_setup`]) or a teardown ends
//! ([`deregister`]). Teardown needs only the pipeline id: every name and
//! login comes from the record.
//!
//! Teardown, in order: [`load`] (refuses an unknown pipeline, one whose
//! setup is still running, and a `delete_clone` of a cluster this pipeline
//! does not own — each before anything is touched), [`drop_databases`]
//! (subscription detached from its slot and dropped, the slot's WAL sender
//! terminated and the slot dropped, the publication dropped — only objects
//! of the pipeline's names and marks), [`delete_clone`] and [`clone_gone`]
//! when asked, [`delete_share`] when asked or (by default) when no other
//! registered pipeline rests on a share this pipeline made, then
//! [`deregister`]. Every step is idempotent: what is already gone is
//! success, so a teardown run twice ends the same as once, and the second
//! `load` names the pipeline unknown.
//!
//! Pause and resume ([`pause`], [`resume`]) disable and enable the
//! subscription on the clone and record the phase, so the monitor reports
//! a paused pipeline as paused (its slot still retains WAL, and that still
//! alarms). Both are idempotent: pausing a paused pipeline changes nothing.
//! A switched-over pipeline (phase `switched_over`, set by the switchover's
//! finish) refuses resume and a setup run again (`Pipeline.SwitchedOver`):
//! either would replicate onto the standalone copy. A re-seed's setup
//! makes a new copy and the pipeline streaming again.

use crate::error::{Error, Result};
use crate::pipeline::{
    Expected, OwnedShare, Phase, PipelineId, PipelineRecord, UndoPlan, WaitKind,
};
use crate::ports::{Clones, Cloud, ControlPlane, Coordination, ResourceShare};
use crate::steps::{self, cleanup::CleanupReport};
use crate::workflow::{self, State};
use serde::{Deserialize, Serialize};

/// The `RecordInventory` task's input: the state and the execution.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryInput {
    pub state: State,
    pub execution: String,
}

/// What `RecordInventory` returns (`$.inventory`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub execution: String,
    /// This execution wrote the record (none was there): only then may its
    /// cleanup remove it.
    pub created_record: bool,
    /// The record was there and the pipeline streamed (or was paused):
    /// this execution runs setup again on a live pipeline, and its cleanup
    /// must not undo what it found and reused.
    #[serde(default)]
    pub registered_before: bool,
    /// The setup mark of the pipeline: the record's when one was there
    /// (this run's request drew a new one), else the state's. The setup
    /// state machine copies it into `$.pipeline.setup_mark`.
    pub setup_mark: String,
}

/// Write (or keep) the pipeline's record before setup makes anything, so
/// a setup that dies anywhere leaves an inventory teardown can use. A
/// record already there (a streaming pipeline, or a failed setup's
/// leftovers) keeps what it lists; only the execution now working on it is
/// noted. Another setup execution of the pipeline that is still running is
/// `Pipeline.SetupRunning`.
pub async fn record_inventory<C: Cloud>(cloud: &C, input: &InventoryInput) -> Result<Recorded> {
    let state = &input.state;
    let coordination = cloud.coordination();
    let existing = coordination.get_pipeline(&state.pipeline.id).await?;
    if let Some(other) = existing
        .as_ref()
        .and_then(|r| r.setup_execution.as_ref())
        .filter(|e| **e != input.execution)
    {
        if coordination.execution_running(other).await? {
            return Err(Error::SetupRunning {
                pipeline: state.pipeline.id.to_string(),
                execution: other.clone(),
            });
        }
    }
    // A setup run again on a switched-over pipeline would enable its
    // subscription on the standalone copy; only a re-seed, which makes a
    // new copy, may set it up again.
    if existing
        .as_ref()
        .is_some_and(|r| r.phase == Phase::SwitchedOver)
        && !state.reseed
    {
        return Err(Error::SwitchedOver {
            pipeline: state.pipeline.id.to_string(),
            action: "a setup run again (not a re-seed)".into(),
        });
    }
    let created_record = existing.is_none();
    let registered_before = existing.as_ref().is_some_and(|r| {
        matches!(
            r.phase,
            Phase::Streaming | Phase::Paused | Phase::SwitchedOver
        )
    });
    // Taken over only as read: two setups of one id that both found no
    // running setup cannot both take the record.
    let (record, expected) = match existing {
        Some(record) => (
            PipelineRecord {
                setup_execution: Some(input.execution.clone()),
                ..record.clone()
            },
            Expected::as_read(&record),
        ),
        None => (
            PipelineRecord {
                setup_execution: Some(input.execution.clone()),
                ..state.record(Phase::SettingUp, workflow::seconds_now())
            },
            Expected::Absent,
        ),
    };
    coordination.put_pipeline(&record, &expected).await?;
    Ok(Recorded {
        execution: input.execution.clone(),
        created_record,
        registered_before,
        setup_mark: record.pipeline.setup_mark,
    })
}

/// After a failed setup's cleanup: remove the inventory, only if this
/// execution wrote it and the pipeline's slot is really gone (a step that
/// timed out after making the slot leaves `$.created` without it; its
/// record must stay for teardown). An unreachable source keeps the record.
pub async fn forget_failed_setup<C: Cloud>(cloud: &C, state: &State) -> Result<bool> {
    let created_record = state.inventory.as_ref().is_some_and(|i| i.created_record);
    if !created_record {
        return Ok(false);
    }
    let id = &state.pipeline.id;
    let Some(record) = cloud.coordination().get_pipeline(id).await? else {
        return Ok(false);
    };
    if record.phase != Phase::SettingUp || record.setup_execution != state.setup_execution() {
        return Ok(false);
    }
    let plane = workflow::plane(cloud, state);
    let triples = state.triples();
    let slots: Vec<&str> = triples.iter().map(|t| t.slot.as_str()).collect();
    let slot_left = match workflow::source(&plane).await {
        Ok(source) => steps::checks::any_slot_left(&source, &slots).await,
        Err(_) => true,
    };
    if slot_left {
        tracing::warn!(
            pipeline = %id,
            "a slot of the pipeline may be left: its inventory stays for teardown"
        );
        return Ok(false);
    }
    cloud.coordination().delete_pipeline(id).await?;
    Ok(true)
}

/// The console input of `teardown.asl.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownRequest {
    pub pipeline_id: PipelineId,
    /// Delete the clone too (default: keep it; the copy is the user's data).
    #[serde(default)]
    pub delete_clone: bool,
    /// Delete the RAM share; default: when this pipeline made it and no
    /// other registered pipeline rests on it.
    #[serde(default)]
    pub delete_share: Option<bool>,
}

/// What the teardown tasks carry: the decisions and the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Teardown {
    pub pipeline_id: PipelineId,
    pub delete_clone: bool,
    pub delete_share: bool,
    pub record: PipelineRecord,
}

impl Teardown {
    /// The setup state the cleanup code works on, rebuilt from the record.
    fn state(&self) -> State {
        State::of_record(&self.record)
    }
}

/// Parse and check the teardown request; read the inventory; refuse what
/// must not go on. Reads only.
pub async fn load<C: Cloud>(cloud: &C, input: serde_json::Value) -> Result<Teardown> {
    let request: TeardownRequest =
        serde_json::from_value(input).map_err(|e| Error::InvalidInput {
            problems: vec![format!("teardown input: {e}")],
        })?;
    let coordination = cloud.coordination();
    let record = workflow::registered::load(cloud, &request.pipeline_id).await?;
    if let Some(execution) = &record.setup_execution {
        if coordination.execution_running(execution).await? {
            return Err(Error::SetupRunning {
                pipeline: request.pipeline_id.to_string(),
                execution: execution.clone(),
            });
        }
    }
    if request.delete_clone {
        if let Some(clone_id) = record.clone_id() {
            // A cluster of that name that is not ours: refuse now, before
            // anything is dropped (clone_status names it Clone.Conflict).
            if let Err(e @ Error::CloneConflict { .. }) = cloud
                .clones()
                .clone_status(record.pipeline.id.as_str(), clone_id)
                .await
            {
                return Err(e);
            }
        }
    }
    let delete_share = match (&record.share, request.delete_share) {
        (None, _) => false,
        (Some(_), Some(asked)) => asked,
        (Some(share), None) => share.created && !shared_with_others(cloud, &record, share).await?,
    };
    Ok(Teardown {
        pipeline_id: request.pipeline_id,
        delete_clone: request.delete_clone,
        delete_share,
        record,
    })
}

async fn shared_with_others<C: Cloud>(
    cloud: &C,
    record: &PipelineRecord,
    share: &OwnedShare,
) -> Result<bool> {
    let (records, _) = cloud.coordination().scan_pipelines().await?;
    Ok(records.iter().any(|other| {
        other.pipeline.id != record.pipeline.id
            && other.share.as_ref().is_some_and(|s| s.arn == share.arn)
    }))
}

/// Subscription, slot and publication: whichever of them exist. The
/// publication only when it carries the pipeline's mark (setup may have
/// reused a user's publication of that name). A record without the
/// clone's endpoint (a setup that failed after making the clone) finds the
/// clone through the control plane, so its subscription is dropped too.
pub async fn drop_databases<C: Cloud>(cloud: &C, teardown: &Teardown) -> Result<CleanupReport> {
    let mut state = teardown.state();
    if state.clone_info.is_none() {
        state.clone_info = cloud
            .clones()
            .clone_status(state.pipeline.id.as_str(), &state.clone_id)
            .await
            .ok();
    }
    // The publication goes only where it carries this pipeline's mark
    // (steps::cleanup decides), with the database's capture once no
    // pipeline's publication is left there.
    let plan = UndoPlan {
        publication: true,
        slot: true,
        subscription: true,
        clone: None,
        share: None,
    };
    let plane = workflow::plane(cloud, &state);
    Box::pin(workflow::cleanup(&plane, &state, &plan)).await
}

/// Delete the clone (only one carrying this pipeline's tag).
pub async fn delete_clone<C: Cloud>(cloud: &C, teardown: &Teardown) -> Result<bool> {
    let state = teardown.state();
    workflow::plane(cloud, &state)
        .delete_clone(&state.clone_id)
        .await
}

/// `Clone.NotReady` while the clone still exists (the ASL retries it,
/// bounded); the clone's id once it is gone.
pub async fn clone_gone<C: Cloud>(cloud: &C, teardown: &Teardown) -> Result<String> {
    let clone_id = teardown.state().clone_id;
    if cloud.clones().clone_exists(&clone_id).await? {
        return Err(Error::CloneNotReady {
            clone_id,
            status: "still being deleted".into(),
        });
    }
    Ok(clone_id)
}

pub async fn delete_share<C: Cloud>(cloud: &C, teardown: &Teardown) -> Result<bool> {
    match (&teardown.record.share, teardown.delete_share) {
        (Some(share), true) => cloud.share().delete_share(&share.arn).await,
        _ => Ok(false),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deregistered {
    pub pipeline: String,
    pub waits_removed: usize,
}

/// Remove the pipeline's waits (a setup that died waiting leaves its
/// token) and then its record: last, so a teardown cut short can run again
/// from the record.
pub async fn deregister<C: Cloud>(cloud: &C, teardown: &Teardown) -> Result<Deregistered> {
    let coordination = cloud.coordination();
    let mut waits_removed = 0;
    let mut resources = vec![(WaitKind::Clone, teardown.state().clone_id)];
    if let Some(share) = &teardown.record.share {
        resources.push((WaitKind::Share, share.arn.clone()));
    }
    for (kind, resource) in resources {
        if let Some(wait) = coordination.get_wait(kind, &resource).await? {
            if teardown.pipeline_id == wait.pipeline_id.as_str()
                && coordination.delete_wait(&wait).await?
            {
                waits_removed += 1;
            }
        }
    }
    coordination.delete_pipeline(&teardown.pipeline_id).await?;
    tracing::info!(pipeline = %teardown.pipeline_id, waits_removed, "pipeline deregistered");
    Ok(Deregistered {
        pipeline: teardown.pipeline_id.to_string(),
        waits_removed,
    })
}

/// Which way [`set_paused`] goes.
pub use crate::steps::pause::Pausing;

/// The input of `pause-pipeline` and `resume-pipeline`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseInput {
    pub pipeline_id: PipelineId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseReport {
    pub pipeline: String,
    pub phase: Phase,
    /// False when it already was in that phase.
    pub changed: bool,
}

/// Disable or enable the subscription of a streaming (or paused)
/// pipeline on its clone; the slot is never touched. Resuming a
/// switched-over one is `Pipeline.SwitchedOver`.
pub async fn set_subscription<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    pausing: Pausing,
) -> Result<()> {
    // A switched-over copy is standalone: replication resumed onto it
    // would apply the old source's changes over the copy's own writes.
    if record.phase == Phase::SwitchedOver && pausing == Pausing::Resume {
        return Err(Error::SwitchedOver {
            pipeline: record.pipeline.id.to_string(),
            action: "resume".into(),
        });
    }
    let info = workflow::registered::clone_info(record, "only a streaming pipeline pauses")?;
    let mut clones = workflow::Sessions::clone(plane, info).await?;
    let triples = record.triples();
    // Every subscription must be there before any is changed, so a
    // pipeline is never left half paused by a missing one.
    for triple in &triples {
        let client = clones.get(&triple.database).await?;
        steps::pause::present(client, triple.subscription.as_str()).await?;
    }
    for triple in &triples {
        let client = clones.get(&triple.database).await?;
        steps::pause::run(client, triple.subscription.as_str(), pausing).await?;
    }
    Ok(())
}

/// Pause or resume a registered pipeline: the subscription, then its
/// phase in the registry.
pub async fn set_paused<C: Cloud>(
    cloud: &C,
    input: &PauseInput,
    pausing: Pausing,
) -> Result<PauseReport> {
    let coordination = cloud.coordination();
    let record = workflow::registered::load(cloud, &input.pipeline_id).await?;
    if record.phase == Phase::SettingUp {
        return Err(Error::NotStreaming {
            detail: format!("pipeline {} is still being set up", input.pipeline_id),
        });
    }
    if let Some(execution) = &record.setup_execution {
        // A setup run again enables the subscription at its end.
        if coordination.execution_running(execution).await? {
            return Err(Error::SetupRunning {
                pipeline: input.pipeline_id.to_string(),
                execution: execution.clone(),
            });
        }
    }
    let plane = cloud.clones().plane_of(&record);
    set_subscription(&plane, &record, pausing).await?;
    let phase = pausing.phase_after(record.phase);
    let changed = record.phase != phase;
    if changed {
        let expected = Expected::as_read(&record);
        coordination
            .put_pipeline(&PipelineRecord { phase, ..record }, &expected)
            .await?;
    }
    tracing::info!(pipeline = %input.pipeline_id, ?phase, changed, "pipeline phase set");
    Ok(PauseReport {
        pipeline: input.pipeline_id.to_string(),
        phase,
        changed,
    })
}
