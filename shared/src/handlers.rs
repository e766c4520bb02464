//! The body of every Lambda function, and the only place JSON is read or
//! written: parse the payload into the task's typed input, run the
//! workflow on a [`Cloud`], encode the result. Each `functions/<name>`
//! binary serves its own function here ([`crate::lambda_function!`]); the
//! local application's Lambda endpoint calls the same ones through
//! [`dispatch`], so a local run exercises the code the Lambdas run.

use crate::error::{Error, Result};
use crate::ports::Cloud;
use crate::workflow::events::{self, EventReport};
use crate::workflow::waits::{self, TokenInput};
use crate::workflow::{self, lifecycle, State};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The Lambda functions, by package name (`functions/<name>`).
pub const FUNCTIONS: [&str; 36] = [
    "validate-input",
    "preflight",
    "record-inventory",
    "prepare-source",
    "share-cluster",
    "accept-share",
    "create-clone",
    "check-clone",
    "clone-lsn",
    "clean-inherited",
    "create-subscription",
    "advance-and-enable",
    "verify",
    "register-pipeline",
    "cleanup",
    "ram-events",
    "rds-events",
    "lag-monitor",
    "load-pipeline",
    "drop-databases",
    "delete-clone",
    "clone-gone",
    "delete-share",
    "deregister-pipeline",
    "pause-pipeline",
    "resume-pipeline",
    "refresh-tables",
    "drift-report",
    "verify-plan",
    "verify-table",
    "verify-report",
    "sync-sequences",
    "switchover-start",
    "switchover-quiet",
    "switchover-catch-up",
    "switchover-finish",
];

// Each step's future is boxed: nested in lambda_runtime's service layers
// the async state machines are otherwise deeper than the compiler's
// type-layout limit.

/// Parse a task's input; a bad one is `Input.Invalid`.
pub fn parse<T: DeserializeOwned>(payload: Value) -> Result<T> {
    serde_json::from_value(payload).map_err(|e| Error::InvalidInput {
        problems: vec![format!("task input: {e}")],
    })
}

/// Encode a task's output; a value that does not encode is
/// `Output.Unencodable`, naming its type.
pub fn output<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|cause| Error::OutputUnencodable {
        what: std::any::type_name::<T>().to_string(),
        cause,
    })
}

fn state(payload: Value) -> Result<State> {
    parse(payload)
}

/// An EventBridge event's envelope; anything else is `Event.Malformed`.
fn event(payload: Value) -> Result<events::Event> {
    serde_json::from_value(payload).map_err(|e| Error::EventMalformed {
        reason: format!("not an EventBridge event: {e}"),
    })
}

/// The console input, checked whole (every problem named at once).
pub async fn validate_input<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    output(&workflow::state::validate(payload, cloud.region())?)
}

pub async fn preflight<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(&Box::pin(workflow::preflight_registered(cloud, &state)).await?)
}

pub async fn prepare_source<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(
        &Box::pin(workflow::prepare_source(
            &workflow::plane(cloud, &state),
            &state,
        ))
        .await?,
    )
}

pub async fn share_cluster<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(&Box::pin(workflow::share_cluster(cloud, &state)).await?)
}

/// A poll with the state, a wait when the payload carries a task token.
pub async fn accept_share<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    if payload.get("task_token").is_some() {
        let input: TokenInput = parse(payload)?;
        output(&Box::pin(waits::await_share(cloud, &input)).await?)
    } else {
        output(&Box::pin(waits::accept_share(cloud, &state(payload)?)).await?)
    }
}

pub async fn create_clone<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(
        &Box::pin(workflow::create_clone(
            &workflow::plane(cloud, &state),
            &state,
        ))
        .await?,
    )
}

/// A poll with the state, a wait when the payload carries a task token.
pub async fn check_clone<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    if payload.get("task_token").is_some() {
        let input: TokenInput = parse(payload)?;
        output(&Box::pin(waits::await_clone(cloud, &input)).await?)
    } else {
        output(&Box::pin(waits::check_clone(cloud, &state(payload)?)).await?)
    }
}

pub async fn clone_lsn<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(&Box::pin(workflow::clone_lsn(&workflow::plane(cloud, &state), &state)).await?)
}

pub async fn clean_inherited<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(
        &Box::pin(workflow::clean_inherited(
            &workflow::plane(cloud, &state),
            &state,
        ))
        .await?,
    )
}

pub async fn create_subscription<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(
        &Box::pin(workflow::create_subscription(
            &workflow::plane(cloud, &state),
            &state,
        ))
        .await?,
    )
}

pub async fn advance_and_enable<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(
        &Box::pin(workflow::advance_and_enable(
            &workflow::plane(cloud, &state),
            &state,
        ))
        .await?,
    )
}

pub async fn verify<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(&Box::pin(workflow::verify(&workflow::plane(cloud, &state), &state)).await?)
}

pub async fn register_pipeline<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    output(&Box::pin(workflow::register(cloud, &state)).await?)
}

pub async fn cleanup<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let state = state(payload)?;
    let plan = state.undo_plan();
    let mut report = Box::pin(workflow::undo(cloud, &state, &plan)).await?;
    // Only once everything it made is gone does the inventory go.
    report.inventory_removed = lifecycle::forget_failed_setup(cloud, &state).await?;
    output(&report)
}

pub async fn record_inventory<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let input: lifecycle::InventoryInput = parse(payload)?;
    output(&Box::pin(lifecycle::record_inventory(cloud, &input)).await?)
}

/// The teardown's first task: the console input in, the teardown's
/// decisions and inventory out.
pub async fn load_pipeline<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    output(&Box::pin(lifecycle::load(cloud, payload)).await?)
}

fn teardown(payload: Value) -> Result<lifecycle::Teardown> {
    parse(payload)
}

pub async fn drop_databases<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let t = teardown(payload)?;
    output(&Box::pin(lifecycle::drop_databases(cloud, &t)).await?)
}

pub async fn delete_clone<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let t = teardown(payload)?;
    output(&Box::pin(lifecycle::delete_clone(cloud, &t)).await?)
}

pub async fn clone_gone<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let t = teardown(payload)?;
    output(&Box::pin(lifecycle::clone_gone(cloud, &t)).await?)
}

pub async fn delete_share<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let t = teardown(payload)?;
    output(&Box::pin(lifecycle::delete_share(cloud, &t)).await?)
}

/// Invoked directly (console: a test event `{"pipeline_id": "..."}`).
pub async fn pause_pipeline<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let input: lifecycle::PauseInput = parse(payload)?;
    output(
        &Box::pin(lifecycle::set_paused(
            cloud,
            &input,
            lifecycle::Pausing::Pause,
        ))
        .await?,
    )
}

pub async fn resume_pipeline<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let input: lifecycle::PauseInput = parse(payload)?;
    output(
        &Box::pin(lifecycle::set_paused(
            cloud,
            &input,
            lifecycle::Pausing::Resume,
        ))
        .await?,
    )
}

pub async fn deregister_pipeline<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let t = teardown(payload)?;
    output(&Box::pin(lifecycle::deregister(cloud, &t)).await?)
}

pub async fn ram_events<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    output(&Box::pin(on_ram_event(cloud, payload)).await?)
}

pub async fn rds_events<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    output(&Box::pin(on_rds_event(cloud, payload)).await?)
}

/// The `ram-events` body before its output is encoded.
pub async fn on_ram_event<C: Cloud>(cloud: &C, payload: Value) -> Result<EventReport> {
    events::on_ram_event(cloud, &event(payload)?).await
}

/// The `rds-events` body before its output is encoded.
pub async fn on_rds_event<C: Cloud>(cloud: &C, payload: Value) -> Result<EventReport> {
    events::on_rds_event(cloud, &event(payload)?).await
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Every registered pipeline's lag and slots, printed as Embedded Metric
/// Format lines on stdout (CloudWatch Logs makes them metrics); returns
/// the counts. A database that cannot be read is a metric and an error
/// line for its pipelines, not a failed run.
pub async fn lag_monitor<C: Cloud>(cloud: &C, _payload: Value) -> Result<Value> {
    let (report, lines) = Box::pin(crate::monitor::run(cloud, now_ms())).await?;
    for line in &lines {
        println!("{line}");
    }
    Ok(serde_json::json!({
        "pipelines": report.pipelines.len(),
        "errors": report.errors.len(),
        "connections": report.connections,
        "took_ms": report.took_ms,
    }))
}

/// `{"pipeline_id": ...}` for one pipeline; the schedule's event (or no
/// input) for every streaming one.
fn pipeline_choice(payload: Value) -> Result<workflow::schema::PipelineChoice> {
    if payload.is_null() || payload.get("detail-type").is_some() {
        return Ok(workflow::schema::PipelineChoice::default());
    }
    parse(payload)
}

/// On the monitor's schedule and on demand: add the tables new to each
/// publication to its subscription, and say which schema changes a target
/// could not apply.
pub async fn refresh_tables<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let choice = pipeline_choice(payload)?;
    output(&Box::pin(workflow::schema::refresh(cloud, &choice)).await?)
}

/// The drift report: table shapes, source against target, by name.
pub async fn drift_report<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let choice = pipeline_choice(payload)?;
    output(&Box::pin(workflow::schema::drift(cloud, &choice)).await?)
}

/// The verification's first task: the pipeline streams, and the tables
/// the Map goes over, written to the runs bucket.
pub async fn verify_plan<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let input: workflow::verify::PlanRequest = parse(payload)?;
    output(&Box::pin(workflow::verify::plan_to_store(cloud, &input)).await?)
}

/// One table of the Map; its verdict goes to the runs bucket.
pub async fn verify_table<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let item: workflow::verify::MapItem = parse(payload)?;
    output(&Box::pin(workflow::verify::table_to_store(cloud, &item)).await?)
}

/// Every verdict of the run summed up; `TablesDiffering` as an EMF line on
/// stdout (the alarm's metric).
pub async fn verify_report<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let input: workflow::verify::ReportRequest = parse(payload)?;
    let summary = Box::pin(workflow::verify::report_from_store(cloud, &input)).await?;
    for line in &crate::monitor::emf::verification_lines(&summary.counts(), now_ms()) {
        println!("{line}");
    }
    output(&summary)
}

pub async fn sync_sequences<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let request: workflow::switchover::SequencesRequest = parse(payload)?;
    output(&Box::pin(workflow::switchover::sequences(cloud, &request)).await?)
}

pub async fn switchover_start<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let request: workflow::switchover::SwitchoverRequest = parse(payload)?;
    output(&Box::pin(workflow::switchover::start(cloud, &request)).await?)
}

fn switchover(payload: Value) -> Result<workflow::switchover::Switchover> {
    parse(payload)
}

pub async fn switchover_quiet<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let s = switchover(payload)?;
    output(&Box::pin(workflow::switchover::quiet(cloud, &s)).await?)
}

pub async fn switchover_catch_up<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let s = switchover(payload)?;
    output(&Box::pin(workflow::switchover::catch_up(cloud, &s)).await?)
}

pub async fn switchover_finish<C: Cloud>(cloud: &C, payload: Value) -> Result<Value> {
    let s = switchover(payload)?;
    output(&Box::pin(workflow::switchover::finish(cloud, &s)).await?)
}

/// The package name in a Lambda function name or ARN: the last `:` part,
/// without a `clonesync-` prefix (`arn:...:function:clonesync-verify` is
/// `verify`).
pub fn function_of(name_or_arn: &str) -> Option<&'static str> {
    let name = name_or_arn.rsplit(':').next().unwrap_or(name_or_arn);
    let name = name.strip_prefix("clonesync-").unwrap_or(name);
    FUNCTIONS.iter().copied().find(|f| *f == name)
}

/// Run the function named `function` (a package name, see [`FUNCTIONS`]).
pub async fn dispatch<C: Cloud>(cloud: &C, function: &str, payload: Value) -> Result<Value> {
    match function {
        "validate-input" => validate_input(cloud, payload).await,
        "preflight" => preflight(cloud, payload).await,
        "record-inventory" => record_inventory(cloud, payload).await,
        "prepare-source" => prepare_source(cloud, payload).await,
        "share-cluster" => share_cluster(cloud, payload).await,
        "accept-share" => accept_share(cloud, payload).await,
        "create-clone" => create_clone(cloud, payload).await,
        "check-clone" => check_clone(cloud, payload).await,
        "clone-lsn" => clone_lsn(cloud, payload).await,
        "clean-inherited" => clean_inherited(cloud, payload).await,
        "create-subscription" => create_subscription(cloud, payload).await,
        "advance-and-enable" => advance_and_enable(cloud, payload).await,
        "verify" => verify(cloud, payload).await,
        "register-pipeline" => register_pipeline(cloud, payload).await,
        "cleanup" => cleanup(cloud, payload).await,
        "ram-events" => ram_events(cloud, payload).await,
        "rds-events" => rds_events(cloud, payload).await,
        "lag-monitor" => lag_monitor(cloud, payload).await,
        "load-pipeline" => load_pipeline(cloud, payload).await,
        "drop-databases" => drop_databases(cloud, payload).await,
        "delete-clone" => delete_clone(cloud, payload).await,
        "clone-gone" => clone_gone(cloud, payload).await,
        "delete-share" => delete_share(cloud, payload).await,
        "deregister-pipeline" => deregister_pipeline(cloud, payload).await,
        "pause-pipeline" => pause_pipeline(cloud, payload).await,
        "resume-pipeline" => resume_pipeline(cloud, payload).await,
        "refresh-tables" => refresh_tables(cloud, payload).await,
        "drift-report" => drift_report(cloud, payload).await,
        "verify-plan" => verify_plan(cloud, payload).await,
        "verify-table" => verify_table(cloud, payload).await,
        "verify-report" => verify_report(cloud, payload).await,
        "sync-sequences" => sync_sequences(cloud, payload).await,
        "switchover-start" => switchover_start(cloud, payload).await,
        "switchover-quiet" => switchover_quiet(cloud, payload).await,
        "switchover-catch-up" => switchover_catch_up(cloud, payload).await,
        "switchover-finish" => switchover_finish(cloud, payload).await,
        other => Err(Error::invalid(format!("no Lambda function {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_arns_and_names() {
        assert_eq!(
            function_of("arn:aws:lambda:eu-west-1:123456789012:function:clonesync-verify"),
            Some("verify")
        );
        assert_eq!(function_of("clone-lsn"), Some("clone-lsn"));
        assert_eq!(function_of("clonesync-nothing"), None);
    }

    #[test]
    fn an_output_that_does_not_encode_is_named_as_such_not_as_input() {
        // JSON object keys must be strings; a map keyed by pairs is not.
        let unencodable: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let err = output(&unencodable).unwrap_err();
        assert_eq!(err.name(), "Output.Unencodable");
        assert!(err.to_string().contains("BTreeMap"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
