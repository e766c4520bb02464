//! The two waits of the setup: for the RAM share to be accepted and for
//! the clone to become available.
//!
//! Each wait is a `.waitForTaskToken` task. Its Lambda stores the token in
//! the registry under the resource it waits for, then checks once itself:
//! if the resource is ready already (an organization share, an event that
//! came before the token was stored) it completes the task at once. Else
//! the event handlers complete it. Events can be lost, so the ASL falls
//! back, on timeout, to polling the same check ([`accept_share`],
//! [`check_clone`]) with a bounded retry on `*.NotReady`.

use crate::error::Result;
use crate::pipeline::{Accepted, CloneInfo, Wait, WaitKind};
use crate::ports::{Clones, Cloud, Coordination, ResourceShare};
use crate::workflow::State;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a stored token is kept (longer than the ASL's TimeoutSeconds).
pub const WAIT_TTL: Duration = Duration::from_secs(6 * 3600);

/// The input of a `.waitForTaskToken` task.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenInput {
    pub task_token: String,
    pub state: State,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOutcome {
    /// Ready already; this call completed the task.
    CompletedNow,
    /// Not ready; the token is stored for the event handler.
    Waiting,
}

/// Poll: accept the share now or answer `Share.NotReady`.
pub async fn accept_share<C: Cloud>(cloud: &C, state: &State) -> Result<Accepted> {
    cloud.share().accept_share(state.share_arn()?).await
}

/// Poll: the clone when available, or `Clone.NotReady`.
pub async fn check_clone<C: Cloud>(cloud: &C, state: &State) -> Result<CloneInfo> {
    cloud
        .clones()
        .clone_status(state.pipeline.id.as_str(), &state.clone_id)
        .await
}

async fn finish<C: Cloud, T: Serialize + Sync>(
    cloud: &C,
    wait: &Wait,
    result: Result<T>,
) -> Result<WaitOutcome> {
    let coordination = cloud.coordination();
    match result {
        Ok(value) => {
            coordination.send_success(&wait.task_token, &value).await?;
            coordination.delete_wait(wait).await?;
            Ok(WaitOutcome::CompletedNow)
        }
        Err(e) if e.is_transient() => Ok(WaitOutcome::Waiting),
        Err(e) => {
            coordination.send_failure(&wait.task_token, &e).await?;
            coordination.delete_wait(wait).await?;
            Ok(WaitOutcome::CompletedNow)
        }
    }
}

pub async fn await_share<C: Cloud>(cloud: &C, input: &TokenInput) -> Result<WaitOutcome> {
    let wait = Wait {
        kind: WaitKind::Share,
        resource: input.state.share_arn()?.to_string(),
        pipeline_id: input.state.pipeline.id.clone(),
        task_token: input.task_token.clone(),
    };
    cloud.coordination().put_wait(&wait, WAIT_TTL).await?;
    let result = accept_share(cloud, &input.state).await;
    finish(cloud, &wait, result).await
}

pub async fn await_clone<C: Cloud>(cloud: &C, input: &TokenInput) -> Result<WaitOutcome> {
    let wait = Wait {
        kind: WaitKind::Clone,
        resource: input.state.clone_id.clone(),
        pipeline_id: input.state.pipeline.id.clone(),
        task_token: input.task_token.clone(),
    };
    cloud.coordination().put_wait(&wait, WAIT_TTL).await?;
    let result = check_clone(cloud, &input.state).await;
    finish(cloud, &wait, result).await
}

/// Wake the share wait `wait` after confirming with the API (used by the
/// RAM event handler).
pub(crate) async fn wake_share<C: Cloud>(cloud: &C, wait: &Wait) -> Result<WaitOutcome> {
    let result = cloud.share().accept_share(&wait.resource).await;
    let outcome = finish(cloud, wait, result).await?;
    if outcome == WaitOutcome::Waiting {
        cloud
            .coordination()
            .send_heartbeat(&wait.task_token)
            .await?;
    }
    Ok(outcome)
}

/// Wake the clone wait `wait` after confirming with Describe (used by the
/// RDS event handler); a clone still on its way gets a heartbeat.
pub(crate) async fn wake_clone<C: Cloud>(cloud: &C, wait: &Wait) -> Result<WaitOutcome> {
    let result = cloud
        .clones()
        .clone_status(&wait.pipeline_id, &wait.resource)
        .await;
    let outcome = finish(cloud, wait, result).await?;
    if outcome == WaitOutcome::Waiting {
        cloud
            .coordination()
            .send_heartbeat(&wait.task_token)
            .await?;
    }
    Ok(outcome)
}
