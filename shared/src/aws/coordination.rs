//! [`Coordination`] on DynamoDB (the registry table) and Step Functions
//! (the task callbacks). The Lambda functions use it with their own
//! clients; a local run uses it against moto.

use crate::aws::registry::Registry;
use crate::aws::sfn;
use crate::error::{Error, Result};
use crate::pipeline::{Expected, PipelineId, PipelineRecord, Wait, WaitKind};
use crate::ports::coordination::{Coordination, Scanned};
use serde::Serialize;
use std::time::Duration;

pub struct StepFunctionsCoordination<'a> {
    pub registry: Registry<'a>,
    pub sfn: &'a aws_sdk_sfn::Client,
}

impl Coordination for StepFunctionsCoordination<'_> {
    async fn put_wait(&self, wait: &Wait, keep_for: Duration) -> Result<()> {
        self.registry.put_wait(wait, keep_for).await
    }

    async fn get_wait(&self, kind: WaitKind, resource: &str) -> Result<Option<Wait>> {
        self.registry.get_wait(kind, resource).await
    }

    async fn delete_wait(&self, wait: &Wait) -> Result<bool> {
        self.registry.delete_wait(wait).await
    }

    async fn send_success<T: Serialize + Sync>(
        &self,
        task_token: &str,
        output: &T,
    ) -> Result<bool> {
        let output = serde_json::to_value(output).map_err(|cause| Error::OutputUnencodable {
            what: "a waiting task's output (SendTaskSuccess)".into(),
            cause,
        })?;
        sfn::send_success(self.sfn, task_token, &output).await
    }

    async fn send_failure(&self, task_token: &str, error: &Error) -> Result<bool> {
        sfn::send_failure(self.sfn, task_token, error.name(), &error.to_string()).await
    }

    async fn send_heartbeat(&self, task_token: &str) -> Result<bool> {
        sfn::send_heartbeat(self.sfn, task_token).await
    }

    async fn put_pipeline(&self, record: &PipelineRecord, expected: &Expected) -> Result<()> {
        self.registry.put_pipeline(record, expected).await
    }

    async fn scan_pipelines(&self) -> Result<Scanned> {
        self.registry.scan_pipelines().await
    }

    async fn get_pipeline(&self, pipeline_id: &PipelineId) -> Result<Option<PipelineRecord>> {
        self.registry.get_pipeline(pipeline_id).await
    }

    async fn execution_running(&self, execution: &str) -> Result<bool> {
        sfn::execution_running(self.sfn, execution).await
    }

    async fn delete_pipeline(&self, pipeline_id: &PipelineId) -> Result<()> {
        self.registry.delete_pipeline(pipeline_id).await
    }
}
