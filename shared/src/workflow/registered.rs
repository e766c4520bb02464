//! One handle for a registered pipeline, written once: its lookup by id
//! (a [`PipelineId`] is valid by construction; `Pipeline.Unknown` for one
//! not registered), its control plane, and its clone (`Verify.NotStreaming`
//! naming what needed it while the pipeline has none). Every task on a
//! registered pipeline starts here. Reads only.

use crate::error::{Error, Result};
use crate::pipeline::{CloneInfo, PipelineId, PipelineRecord};
use crate::ports::{Clones, Cloud, Coordination};

/// The registered record of `pipeline_id`.
pub async fn load<C: Cloud>(cloud: &C, pipeline_id: &PipelineId) -> Result<PipelineRecord> {
    cloud
        .coordination()
        .get_pipeline(pipeline_id)
        .await?
        .ok_or_else(|| Error::PipelineUnknown {
            pipeline: pipeline_id.to_string(),
        })
}

/// The control plane of a registered pipeline.
pub fn plane<'a, C: Cloud>(
    cloud: &'a C,
    record: &PipelineRecord,
) -> <C::Clones as Clones>::Plane<'a> {
    cloud.clones().plane_of(record)
}

/// The pipeline's clone; [`no_clone_yet`] while there is none.
pub fn clone_info<'r>(record: &'r PipelineRecord, needs: &str) -> Result<&'r CloneInfo> {
    record
        .clone_info
        .as_ref()
        .ok_or_else(|| no_clone_yet(record, needs))
}

/// `Verify.NotStreaming`: the pipeline has no clone yet (or its setup
/// has not finished), and `needs` says what needed one.
pub fn no_clone_yet(record: &PipelineRecord, needs: &str) -> Error {
    Error::NotStreaming {
        detail: format!("pipeline {} has no clone yet: {needs}", record.pipeline.id),
    }
}
