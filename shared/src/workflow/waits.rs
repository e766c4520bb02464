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

use crate::aws::ram::Accepted;
use crate::aws::registry::{Wait, WaitKind};
use crate::aws::sfn;
use crate::cloud::Cloud;
use crate::control_plane::CloneInfo;
use crate::error::{Error, Result};
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
    cloud.accept_share(state.share_arn()?).await
}

/// Poll: the clone when available, or `Clone.NotReady`.
pub async fn check_clone<C: Cloud>(cloud: &C, state: &State) -> Result<CloneInfo> {
    cloud
        .clone_status(state.pipeline.id.as_str(), &state.clone_id)
        .await
}

async fn finish<C: Cloud, T: Serialize>(
    cloud: &C,
    wait: &Wait,
    result: Result<T>,
) -> Result<WaitOutcome> {
    match result {
        Ok(value) => {
            let output = serde_json::to_value(&value).map_err(|e| Error::invalid(e.to_string()))?;
            sfn::send_success(cloud.sfn(), &wait.task_token, &output).await?;
            cloud.registry().delete_wait(wait).await?;
            Ok(WaitOutcome::CompletedNow)
        }
        Err(e) if e.is_transient() => Ok(WaitOutcome::Waiting),
        Err(e) => {
            sfn::send_failure(cloud.sfn(), &wait.task_token, e.name(), &e.to_string()).await?;
            cloud.registry().delete_wait(wait).await?;
            Ok(WaitOutcome::CompletedNow)
        }
    }
}

pub async fn await_share<C: Cloud>(cloud: &C, input: &TokenInput) -> Result<WaitOutcome> {
    let wait = Wait {
        kind: WaitKind::Share,
        resource: input.state.share_arn()?.to_string(),
        pipeline_id: input.state.pipeline.id.to_string(),
        task_token: input.task_token.clone(),
    };
    cloud.registry().put_wait(&wait, WAIT_TTL).await?;
    let result = accept_share(cloud, &input.state).await;
    finish(cloud, &wait, result).await
}

pub async fn await_clone<C: Cloud>(cloud: &C, input: &TokenInput) -> Result<WaitOutcome> {
    let wait = Wait {
        kind: WaitKind::Clone,
        resource: input.state.clone_id.clone(),
        pipeline_id: input.state.pipeline.id.to_string(),
        task_token: input.task_token.clone(),
    };
    cloud.registry().put_wait(&wait, WAIT_TTL).await?;
    let result = check_clone(cloud, &input.state).await;
    finish(cloud, &wait, result).await
}

/// Wake the share wait `wait` after confirming with the API (used by the
/// RAM event handler).
pub(crate) async fn wake_share<C: Cloud>(cloud: &C, wait: &Wait) -> Result<WaitOutcome> {
    let result = cloud.accept_share(&wait.resource).await;
    let outcome = finish(cloud, wait, result).await?;
    if outcome == WaitOutcome::Waiting {
        sfn::send_heartbeat(cloud.sfn(), &wait.task_token).await?;
    }
    Ok(outcome)
}

/// Wake the clone wait `wait` after confirming with Describe (used by the
/// RDS event handler); a clone still on its way gets a heartbeat.
pub(crate) async fn wake_clone<C: Cloud>(cloud: &C, wait: &Wait) -> Result<WaitOutcome> {
    let result = cloud.clone_status(&wait.pipeline_id, &wait.resource).await;
    let outcome = finish(cloud, wait, result).await?;
    if outcome == WaitOutcome::Waiting {
        sfn::send_heartbeat(cloud.sfn(), &wait.task_token).await?;
    }
    Ok(outcome)
}

/// The `accept-share` task: a poll when the input is the state, a wait
/// when it carries a task token.
pub async fn share_task<C: Cloud>(
    cloud: &C,
    payload: serde_json::Value,
) -> Result<serde_json::Value> {
    if payload.get("task_token").is_some() {
        let input: TokenInput = crate::lambda::parse(payload)?;
        crate::lambda::output(&await_share(cloud, &input).await?)
    } else {
        let state: State = crate::lambda::parse(payload)?;
        crate::lambda::output(&accept_share(cloud, &state).await?)
    }
}

/// The `check-clone` task: a poll when the input is the state, a wait when
/// it carries a task token.
pub async fn clone_task<C: Cloud>(
    cloud: &C,
    payload: serde_json::Value,
) -> Result<serde_json::Value> {
    if payload.get("task_token").is_some() {
        let input: TokenInput = crate::lambda::parse(payload)?;
        crate::lambda::output(&await_clone(cloud, &input).await?)
    } else {
        let state: State = crate::lambda::parse(payload)?;
        crate::lambda::output(&check_clone(cloud, &state).await?)
    }
}
