//! The coordination of waits: the registry (waiting task tokens, and the
//! pipelines that reached streaming) and the task callbacks that wake a
//! waiting state.
//!
//! One implementation serves both runs: DynamoDB and Step Functions
//! (`crate::aws::StepFunctionsCoordination`); a local run points it at
//! moto, which executes the real state machine.

use crate::error::Result;
use crate::pipeline::{Expected, PipelineId, PipelineRecord, Wait, WaitKind};
use crate::Error;
use serde::Serialize;
use std::future::Future;
use std::time::Duration;

/// The registered pipelines, and apart the ids of records that do not
/// decode, each with why.
pub type Scanned = (Vec<PipelineRecord>, Vec<(String, Error)>);

pub trait Coordination: Sync {
    /// Store a waiting step's token under its resource (a put: twice is once).
    fn put_wait(&self, wait: &Wait, keep_for: Duration) -> impl Future<Output = Result<()>> + Send;

    /// The step waiting on `resource`, if one is (and its token has not
    /// expired).
    fn get_wait(
        &self,
        kind: WaitKind,
        resource: &str,
    ) -> impl Future<Output = Result<Option<Wait>>> + Send;

    /// Remove a wait, only if it still holds its token; `false` otherwise.
    fn delete_wait(&self, wait: &Wait) -> impl Future<Output = Result<bool>> + Send;

    /// Complete the waiting task with `output`; `false` when the token no
    /// longer waits (someone else finished the wait).
    fn send_success<T: Serialize + Sync>(
        &self,
        task_token: &str,
        output: &T,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Fail the waiting task with one of our stable error names.
    fn send_failure(
        &self,
        task_token: &str,
        error: &Error,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Tell the waiting task it is still alive.
    fn send_heartbeat(&self, task_token: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Write the pipeline's record when the stored one is as `expected`;
    /// `Pipeline.Changed` otherwise.
    fn put_pipeline(
        &self,
        record: &PipelineRecord,
        expected: &Expected,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Every registered pipeline, and apart the ids of records that do not
    /// decode with why.
    fn scan_pipelines(&self) -> impl Future<Output = Result<Scanned>> + Send;

    /// One pipeline's record; `None` when it is not registered.
    fn get_pipeline(
        &self,
        pipeline_id: &PipelineId,
    ) -> impl Future<Output = Result<Option<PipelineRecord>>> + Send;

    /// Whether a state machine execution (its ARN) is still running.
    fn execution_running(&self, execution: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Remove a pipeline's record (absent is success).
    fn delete_pipeline(&self, pipeline_id: &PipelineId) -> impl Future<Output = Result<()>> + Send;
}
