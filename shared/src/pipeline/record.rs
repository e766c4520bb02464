//! What the registry keeps: a step waiting on a resource, and a pipeline
//! that reached streaming (the inventory the lag monitor reads).

use crate::pipeline::{
    CloneInfo, CloneSettings, PipelineId, PipelineSpec, Scope, SourceCluster, Triple,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    Share,
    Clone,
}

/// A step waiting on a resource. The token is not logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Wait {
    pub kind: WaitKind,
    pub resource: String,
    pub pipeline_id: PipelineId,
    pub task_token: String,
}

impl std::fmt::Debug for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait")
            .field("kind", &self.kind)
            .field("resource", &self.resource)
            .field("pipeline_id", &self.pipeline_id)
            .finish_non_exhaustive()
    }
}

/// Where a registered pipeline is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A setup execution is making it (or failed and left what it made).
    SettingUp,
    /// Setup finished; the subscription applies.
    #[default]
    Streaming,
    /// The subscription is disabled on purpose; the slot is kept.
    Paused,
    /// Switched over: the copy is a standalone database. Its subscription
    /// stays disabled (resume is refused) until a re-seed, whose setup
    /// makes the pipeline streaming again.
    SwitchedOver,
}

impl Phase {
    /// Its name as serialized (`setting_up`, `streaming`, `paused`,
    /// `switched_over`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::SettingUp => "setting_up",
            Phase::Streaming => "streaming",
            Phase::Paused => "paused",
            Phase::SwitchedOver => "switched_over",
        }
    }
}

/// The RAM share a pipeline rests on, and whether this pipeline made it
/// (a share it reused may carry other pipelines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedShare {
    pub arn: String,
    pub created: bool,
}

/// The pipeline's inventory in the registry: everything it owns, so that
/// teardown, pause, resume and re-seed need only its id; and what the lag
/// monitor reads. Written when setup starts making things
/// ([`Phase::SettingUp`]) and completed when it streams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRecord {
    /// Its id and the names of its publication, slot and subscription.
    pub pipeline: PipelineSpec,
    /// The source cluster, database and login.
    pub source: SourceCluster,
    pub clone: CloneSettings,
    /// The clone's DB cluster id (derived from the pipeline id, so known
    /// before the clone exists).
    #[serde(default)]
    pub clone_id: Option<String>,
    /// The clone once it accepts connections.
    #[serde(default)]
    pub clone_info: Option<CloneInfo>,
    #[serde(default)]
    pub share: Option<OwnedShare>,
    /// The setup execution that made it.
    #[serde(default)]
    pub setup_execution: Option<String>,
    #[serde(default)]
    pub phase: Phase,
    /// Seconds since the Unix epoch.
    pub registered_at: u64,
    /// Its (publication, slot, subscription) triples with their databases
    /// and apply groups; empty in a record written before there were
    /// several (then [`PipelineRecord::triples`] is the pipeline's own).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triples: Vec<Triple>,
    /// Subscriptions per database (`pipeline.apply_groups`), kept so a
    /// record written before its setup planned its triples still names
    /// every group's slot, and a re-seed asks for the same groups.
    #[serde(default = "one_group", skip_serializing_if = "is_one_group")]
    pub apply_groups: u32,
}

fn one_group() -> u32 {
    1
}

fn is_one_group(groups: &u32) -> bool {
    *groups == 1
}

impl PipelineRecord {
    /// Every triple the pipeline has.
    pub fn triples(&self) -> Vec<Triple> {
        if self.triples.is_empty() {
            vec![Triple::single(&self.pipeline, self.source.login_database())]
        } else {
            self.triples.clone()
        }
    }

    /// The clone's DB cluster id, however much of the clone exists.
    pub fn clone_id(&self) -> Option<&str> {
        self.clone_id
            .as_deref()
            .or(self.clone_info.as_ref().map(|c| c.clone_id.as_str()))
    }

    /// The clone's writer instance id.
    pub fn clone_instance_id(&self) -> Option<String> {
        self.clone_id()
            .map(crate::pipeline::names::writer_instance_id)
    }

    /// The scope of one of its databases: its triples' scope, or the
    /// union of its groups' table lists.
    pub fn database_scope(&self, database: &str) -> crate::error::Result<Scope> {
        let mine: Vec<_> = self
            .triples()
            .into_iter()
            .filter(|t| t.database == database)
            .collect();
        if mine.len() > 1 {
            let mut tables = Vec::new();
            for triple in &mine {
                if let Scope::Tables { tables: list } = &triple.scope {
                    tables.extend(list.iter().cloned());
                }
            }
            tables.sort();
            tables.dedup();
            return Scope::tables(tables);
        }
        Ok(mine
            .first()
            .map(|t| t.scope.clone())
            .unwrap_or_else(|| self.pipeline.scope.clone()))
    }

    /// Whether the lag monitor reads it: it has a clone to read, and its
    /// setup has finished.
    pub fn is_monitored(&self) -> bool {
        self.phase != Phase::SettingUp && self.clone_info.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_are_the_serialized_ones() {
        for phase in [Phase::SettingUp, Phase::Streaming, Phase::Paused] {
            assert_eq!(
                serde_json::to_value(phase).unwrap(),
                serde_json::Value::String(phase.as_str().into())
            );
        }
    }
}

/// What a registry write expects to find, checked by the write itself
/// (DynamoDB writes are last-writer-wins unless conditional): when the
/// stored record is not so, the write is refused as `Pipeline.Changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// No record of the pipeline.
    Absent,
    /// The record as it was read: the same setup execution and phase (a
    /// read-modify-write loses no other write).
    AsRead {
        setup_execution: Option<String>,
        phase: Phase,
    },
    /// A record made by this setup execution, or none (a setup's own
    /// writes: a later setup that took the record over is not undone).
    OwnedBy(String),
    /// A record no setup execution holds, or none.
    Unowned,
}

impl Expected {
    /// The record `record` as read.
    pub fn as_read(record: &PipelineRecord) -> Expected {
        Expected::AsRead {
            setup_execution: record.setup_execution.clone(),
            phase: record.phase,
        }
    }
}
