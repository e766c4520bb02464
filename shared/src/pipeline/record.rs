//! What the registry keeps: a step waiting on a resource, and a pipeline
//! that reached streaming (the inventory the lag monitor reads).

use crate::pipeline::{CloneInfo, CloneSettings, PipelineSpec, SourceCluster};
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
    pub pipeline_id: String,
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

/// What the lag monitor reads about a streaming pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRecord {
    pub pipeline: PipelineSpec,
    pub source: SourceCluster,
    pub clone: CloneSettings,
    pub clone_info: CloneInfo,
    /// Seconds since the Unix epoch.
    pub registered_at: u64,
}
