//! Make the clone, through the control plane.
//!
//! Must run after [`super::prepare_source`]: the clone's start LSN has to be
//! at or after the slot's consistent point, or changes between the two
//! would be lost.
//!
//! Idempotent: the control plane finds a clone of the same id and returns
//! it instead of making a second one. The clone id is derived from the
//! pipeline id, so a retried step asks for the same clone.
//!
//! Leaves behind: the clone (recorded as created), until cleanup deletes it.

use crate::error::Result;
use crate::pipeline::{CloneInfo, PipelineSpec};
use crate::ports::ControlPlane;

/// The clone id a pipeline uses (the naming rule is
/// [`crate::pipeline::names::clone_id`]).
pub fn clone_id(spec: &PipelineSpec) -> String {
    spec.clone_id()
}

pub async fn run<P: ControlPlane>(plane: &P, spec: &PipelineSpec) -> Result<CloneInfo> {
    let id = spec.clone_id();
    let info = plane.create_clone(&id).await?;
    tracing::info!(pipeline = %spec.id, clone = %info.clone_id, port = info.port, "clone ready");
    Ok(info)
}
