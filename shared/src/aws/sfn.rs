//! Waking a waiting step: task success, failure and heartbeat.
//!
//! Events repeat and race the polling fallback, so a token that is no
//! longer waiting (`TaskTimedOut`, `TaskDoesNotExist`, `InvalidToken`) is
//! reported as `Ok(false)`, not an error: someone else finished the wait.

use crate::aws::fault::classify;
use crate::error::Result;

const SERVICE: &str = "states";

pub async fn send_success(
    sfn: &aws_sdk_sfn::Client,
    token: &str,
    output: &serde_json::Value,
) -> Result<bool> {
    use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError as E;
    match sfn
        .send_task_success()
        .task_token(token)
        .output(output.to_string())
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(E::TaskTimedOut(_)) | Some(E::TaskDoesNotExist(_)) | Some(E::InvalidToken(_)) => {
                tracing::info!("task token no longer waiting; success not sent");
                Ok(false)
            }
            _ => Err(classify(SERVICE, "SendTaskSuccess", e)),
        },
    }
}

/// `error` is one of our stable names, so the state machine's Catch
/// matches it like a Lambda error.
pub async fn send_failure(
    sfn: &aws_sdk_sfn::Client,
    token: &str,
    error: &str,
    cause: &str,
) -> Result<bool> {
    use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureError as E;
    match sfn
        .send_task_failure()
        .task_token(token)
        .error(error)
        .cause(cause)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(E::TaskTimedOut(_)) | Some(E::TaskDoesNotExist(_)) | Some(E::InvalidToken(_)) => {
                Ok(false)
            }
            _ => Err(classify(SERVICE, "SendTaskFailure", e)),
        },
    }
}

pub async fn send_heartbeat(sfn: &aws_sdk_sfn::Client, token: &str) -> Result<bool> {
    use aws_sdk_sfn::operation::send_task_heartbeat::SendTaskHeartbeatError as E;
    match sfn.send_task_heartbeat().task_token(token).send().await {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(E::TaskTimedOut(_)) | Some(E::TaskDoesNotExist(_)) | Some(E::InvalidToken(_)) => {
                Ok(false)
            }
            _ => Err(classify(SERVICE, "SendTaskHeartbeat", e)),
        },
    }
}

/// Whether the execution is still running; one that does not exist (or no
/// longer: Step Functions keeps finished ones for 90 days) is not.
pub async fn execution_running(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<bool> {
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError as E;
    use aws_sdk_sfn::types::ExecutionStatus;
    match sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
    {
        Ok(out) => Ok(matches!(
            out.status(),
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive
        )),
        Err(e) => match e.as_service_error() {
            Some(E::ExecutionDoesNotExist(_)) => Ok(false),
            _ => Err(classify(SERVICE, "DescribeExecution", e)),
        },
    }
}
