//! A local run of the real setup state machine: moto's Step Functions
//! engine executes `statemachine/setup.asl.json`; its Lambda tasks reach
//! the handlers in this process ([`crate::invoke`]); the local cloud
//! ([`LocalCloud`]) makes the clone and emits the RAM and RDS events, which
//! the event handlers turn into Step Functions callbacks, as in AWS.

use crate::clone::LocalControlPlane;
use crate::cloud::{CloudEvent, LocalCloud};
use crate::invoke::{self, Delivery, Faults};
use crate::moto::{self, MotoServer, ACCOUNT, REGION, REGISTRY_TABLE};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use clonesync::aws::registry::Registry;
use clonesync::error::{Error, Result};
use clonesync::handlers;
use clonesync::pipeline::{Expected, Waits};
use clonesync::ports::{Cloud, Coordination};
use clonesync::workflow::events::EventReport;
use clonesync::workflow::{self, CleanupTaskReport, State};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The definition, as built into this program.
pub const SETUP_ASL: &str = include_str!("../../statemachine/setup.asl.json");
pub const TEARDOWN_ASL: &str = include_str!("../../statemachine/teardown.asl.json");
pub const VERIFY_ASL: &str = include_str!("../../statemachine/verify.asl.json");
pub const SWITCHOVER_ASL: &str = include_str!("../../statemachine/switchover.asl.json");
const STATE_MACHINE: &str = "clonesync-setup";
const TEARDOWN_MACHINE: &str = "clonesync-teardown";
const VERIFY_MACHINE: &str = "clonesync-verify";
const SWITCHOVER_MACHINE: &str = "clonesync-switchover";

/// `${PreflightArn}` → the ARN of `clonesync-preflight` in moto's account.
pub fn substitute(definition: &str) -> Result<String> {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| Error::LocalDefinitionInvalid {
                reason: "unterminated ${ in the definition".into(),
            })?;
        let key = &rest[start + 2..start + end];
        let function = key
            .strip_suffix("Arn")
            .map(kebab)
            .and_then(|name| handlers::function_of(&name))
            .ok_or_else(|| Error::LocalDefinitionInvalid {
                reason: format!("no function for ${{{key}}}"),
            })?;
        out.push_str(&format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:clonesync-{function}"
        ));
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A state machine of `definition` in moto, its `${...Arn}` resolved to the
/// local functions; its ARN.
async fn create_machine(sfn: &aws_sdk_sfn::Client, name: &str, definition: &str) -> Result<String> {
    Ok(sfn
        .create_state_machine()
        .name(name)
        .definition(substitute(definition)?)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/clonesync-local"))
        .send()
        .await
        .map_err(|e| clonesync::aws::fault::classify("states", "CreateStateMachine", e))?
        .state_machine_arn)
}

/// `RegisterPipeline` → `register-pipeline`.
fn kebab(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// One event delivered to an event handler.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub function: &'static str,
    pub report: std::result::Result<EventReport, String>,
}

/// What the run shows as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Entered {
        state: String,
        at: SystemTime,
    },
    Exited {
        state: String,
        at: SystemTime,
        took: Duration,
    },
    /// A task answered with an error (the ASL may retry or catch it).
    TaskFailed {
        state: String,
        error: String,
    },
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub execution_arn: String,
    pub status: String,
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// When each state was exited, in order.
    pub exits: Vec<(String, SystemTime)>,
    pub started: SystemTime,
    pub stopped: SystemTime,
    /// The execution's own history length (a Distributed Map's children
    /// keep theirs apart, as in Step Functions).
    pub history_events: usize,
    /// The largest input or output any event of the history carries, in
    /// bytes: a state, a task's payload or result.
    pub largest_payload: usize,
}

/// Step Functions' quotas, checked on every execution's history when it
/// ends: the largest input or output of a state or task (256 KiB,
/// `States.DataLimitExceeded`; moto refuses a state's result over it, not
/// every payload) and the events in one execution's history (25,000; AWS
/// fails the execution when it reaches them, moto never does).
pub const PAYLOAD_LIMIT_BYTES: usize = 256 * 1024;
pub const HISTORY_LIMIT_EVENTS: usize = 25_000;

/// The largest input or output an event carries.
fn payload_bytes(event: &HistoryEvent) -> usize {
    [
        event
            .execution_started_event_details()
            .and_then(|d| d.input()),
        event
            .execution_succeeded_event_details()
            .and_then(|d| d.output()),
        event.state_entered_event_details().and_then(|d| d.input()),
        event.state_exited_event_details().and_then(|d| d.output()),
        event
            .lambda_function_scheduled_event_details()
            .and_then(|d| d.input()),
        event
            .lambda_function_succeeded_event_details()
            .and_then(|d| d.output()),
        event.task_scheduled_event_details().map(|d| d.parameters()),
        event
            .task_succeeded_event_details()
            .and_then(|d| d.output()),
    ]
    .into_iter()
    .flatten()
    .map(str::len)
    .max()
    .unwrap_or(0)
}

impl RunOutcome {
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }

    /// The final state (on success).
    pub fn state(&self) -> Result<State> {
        let output = self
            .output
            .clone()
            .ok_or_else(|| Error::LocalRecordInvalid {
                what: "execution output".into(),
                reason: "the execution has no output".into(),
                cause: None,
            })?;
        serde_json::from_value(output).map_err(|e| Error::local_record("execution output", e))
    }

    pub fn exited_at(&self, state: &str) -> Option<SystemTime> {
        self.exits
            .iter()
            .find(|(s, _)| s == state)
            .map(|(_, at)| *at)
    }
}

pub struct LocalRuntime {
    pub cloud: Arc<LocalCloud>,
    pub faults: Arc<Faults>,
    /// Where moto's engine sends the Lambda tasks (127.0.0.1).
    pub lambda_port: u16,
    delivered: Arc<Mutex<Vec<Delivered>>>,
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
    teardown_machine_arn: String,
    verify_machine_arn: String,
    switchover_machine_arn: String,
    tasks: Vec<JoinHandle<()>>,
    // Last: moto stops after the tasks that call it.
    moto: MotoServer,
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl LocalRuntime {
    /// Start moto, the Lambda endpoint and event delivery, and create the
    /// registry table and the state machine.
    pub async fn start(plane: LocalControlPlane, work_dir: &Path) -> Result<LocalRuntime> {
        let iam = crate::iam::Enforcer::local(REGION, ACCOUNT, REGISTRY_TABLE, moto::RUNS_BUCKET)?;
        LocalRuntime::start_with_iam(plane, work_dir, iam).await
    }

    /// [`LocalRuntime::start`] with the roles of `iam` (a test's changed
    /// template).
    pub async fn start_with_iam(
        plane: LocalControlPlane,
        work_dir: &Path,
        iam: Arc<crate::iam::Enforcer>,
    ) -> Result<LocalRuntime> {
        std::fs::create_dir_all(work_dir).map_err(|e| Error::local_file("create", work_dir, e))?;
        let listener = invoke::bind().await?;
        let lambda_port = listener
            .local_addr()
            .map_err(|e| Error::LocalPortUnavailable {
                reason: format!("the Lambda endpoint's address: {e}"),
                cause: Some(Box::new(e)),
            })?
            .port();
        let moto = MotoServer::start(lambda_port)?;
        moto.enable_execution().await?;
        let clients = moto.clients_checked(iam.clone()).await;
        moto::create_registry(&clients.dynamodb, REGISTRY_TABLE).await?;
        moto::create_runs_bucket(&clients.s3, moto::RUNS_BUCKET).await?;
        let (cloud, events) = LocalCloud::new(
            plane,
            work_dir,
            &clients,
            REGION,
            ACCOUNT,
            REGISTRY_TABLE,
            Some(iam),
        );
        let cloud = Arc::new(cloud);
        let faults = Arc::new(Faults::default());
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let state_machine_arn = create_machine(&clients.sfn, STATE_MACHINE, SETUP_ASL).await?;
        let teardown_machine_arn =
            create_machine(&clients.sfn, TEARDOWN_MACHINE, TEARDOWN_ASL).await?;
        let verify_machine_arn = create_machine(&clients.sfn, VERIFY_MACHINE, VERIFY_ASL).await?;
        let switchover_machine_arn =
            create_machine(&clients.sfn, SWITCHOVER_MACHINE, SWITCHOVER_ASL).await?;
        let tasks = vec![
            invoke::serve(listener, cloud.clone(), faults.clone(), Some(moto.port)),
            tokio::spawn(deliver(
                events,
                cloud.clone(),
                faults.clone(),
                delivered.clone(),
            )),
        ];
        Ok(LocalRuntime {
            cloud,
            faults,
            lambda_port,
            delivered,
            sfn: clients.sfn.clone(),
            state_machine_arn,
            teardown_machine_arn,
            verify_machine_arn,
            switchover_machine_arn,
            tasks,
            moto,
        })
    }

    /// The console input for a pipeline of the local source.
    pub fn request(
        &self,
        pipeline_id: &str,
        scope: serde_json::Value,
        database: &str,
        waits: Waits,
    ) -> serde_json::Value {
        request(pipeline_id, scope, database, waits)
    }

    /// Start an execution and follow it to its end, reporting each state.
    pub async fn run(
        &self,
        name: &str,
        input: &serde_json::Value,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RunOutcome> {
        let execution = self.start_on(&self.state_machine_arn, name, input).await?;
        self.watch(&execution, progress).await
    }

    /// Start a setup execution without following it; its ARN.
    pub async fn start_execution(&self, name: &str, input: &serde_json::Value) -> Result<String> {
        self.start_on(&self.state_machine_arn, name, input).await
    }

    /// Follow an execution started earlier to its end.
    pub async fn watch_execution(&self, execution_arn: &str) -> Result<RunOutcome> {
        self.watch(execution_arn, &mut |_| {}).await
    }

    /// Start a teardown execution (`statemachine/teardown.asl.json`) and
    /// follow it to its end.
    pub async fn run_teardown(
        &self,
        name: &str,
        input: &serde_json::Value,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RunOutcome> {
        self.run_on(&self.teardown_machine_arn, name, input, progress)
            .await
    }

    /// Run `statemachine/verify.asl.json` and follow it to its end.
    pub async fn run_verify(
        &self,
        name: &str,
        input: &serde_json::Value,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RunOutcome> {
        self.run_on(&self.verify_machine_arn, name, input, progress)
            .await
    }

    /// Run `statemachine/switchover.asl.json` and follow it to its end.
    pub async fn run_switchover(
        &self,
        name: &str,
        input: &serde_json::Value,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RunOutcome> {
        self.run_on(&self.switchover_machine_arn, name, input, progress)
            .await
    }

    /// Create a state machine of `definition` (its `${...Arn}` resolved to
    /// the local functions) under `name` and run it once with `input`: the
    /// quotas this runtime enforces hold for any definition.
    pub async fn run_definition(
        &self,
        name: &str,
        definition: &str,
        input: &serde_json::Value,
    ) -> Result<RunOutcome> {
        let machine = create_machine(&self.sfn, name, definition).await?;
        self.run_on(&machine, name, input, &mut |_| {}).await
    }

    async fn run_on(
        &self,
        machine: &str,
        name: &str,
        input: &serde_json::Value,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RunOutcome> {
        let execution = self.start_on(machine, name, input).await?;
        self.watch(&execution, progress).await
    }

    /// Start an execution of `machine`; its ARN.
    async fn start_on(
        &self,
        machine: &str,
        name: &str,
        input: &serde_json::Value,
    ) -> Result<String> {
        let started = self
            .sfn
            .start_execution()
            .state_machine_arn(machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| clonesync::aws::fault::classify("states", "StartExecution", e))?;
        Ok(started.execution_arn().to_string())
    }

    async fn watch(
        &self,
        execution_arn: &str,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RunOutcome> {
        let mut seen = 0;
        let mut entered: Vec<(String, SystemTime)> = Vec::new();
        let mut exits = Vec::new();
        let mut polls: usize = 0;
        loop {
            let description = self
                .sfn
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await
                .map_err(|e| clonesync::aws::fault::classify("states", "DescribeExecution", e))?;
            polls += 1;
            let running = *description.status() == ExecutionStatus::Running;
            // The history is read whole each time (it cannot be resumed), so
            // a long one is read less often: every poll up to 500 events,
            // then once per 500 more; and always at the end.
            if running && !polls.is_multiple_of(1 + seen / 500) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let history = self.history(execution_arn).await?;
            for event in history.iter().skip(seen) {
                let at: SystemTime = event
                    .timestamp()
                    .to_owned()
                    .try_into()
                    .unwrap_or(SystemTime::now());
                if let Some(name) = event.state_entered_event_details().map(|d| d.name()) {
                    entered.push((name.to_string(), at));
                    progress(&Progress::Entered {
                        state: name.to_string(),
                        at,
                    });
                } else if let Some(name) = event.state_exited_event_details().map(|d| d.name()) {
                    let since = entered
                        .iter()
                        .rev()
                        .find(|(s, _)| s == name)
                        .map(|(_, t)| *t)
                        .unwrap_or(at);
                    exits.push((name.to_string(), at));
                    progress(&Progress::Exited {
                        state: name.to_string(),
                        at,
                        took: at.duration_since(since).unwrap_or_default(),
                    });
                } else if let Some(error) = task_error(event) {
                    let state = entered.last().map(|(s, _)| s.clone()).unwrap_or_default();
                    progress(&Progress::TaskFailed { state, error });
                }
            }
            seen = history.len();
            if *description.status() != ExecutionStatus::Running {
                // The execution's own input and output too: moto leaves
                // some events' payloads out of the history.
                let largest_payload = history
                    .iter()
                    .map(payload_bytes)
                    .chain(description.input().map(str::len))
                    .chain(description.output().map(str::len))
                    .max()
                    .unwrap_or(0);
                // What moto let through, AWS would have failed.
                let over = if largest_payload > PAYLOAD_LIMIT_BYTES {
                    Some((
                        "States.DataLimitExceeded",
                        format!(
                            "an event carries {largest_payload} bytes, over Step Functions' \
                             {PAYLOAD_LIMIT_BYTES}-byte limit for a state's input or output"
                        ),
                    ))
                } else if history.len() > HISTORY_LIMIT_EVENTS {
                    Some((
                        "Local.HistoryQuotaExceeded",
                        format!(
                            "the execution's history has {} events, over Step Functions' \
                             {HISTORY_LIMIT_EVENTS}-event quota",
                            history.len()
                        ),
                    ))
                } else {
                    None
                };
                let (status, error, cause) = match over {
                    Some((error, cause)) => {
                        ("FAILED".to_string(), Some(error.to_string()), Some(cause))
                    }
                    None => (
                        description.status().as_str().to_string(),
                        description.error().map(str::to_string),
                        description.cause().map(str::to_string),
                    ),
                };
                return Ok(RunOutcome {
                    execution_arn: execution_arn.to_string(),
                    status,
                    output: description
                        .output()
                        .and_then(|o| serde_json::from_str(o).ok()),
                    error,
                    cause,
                    history_events: history.len(),
                    largest_payload,
                    exits,
                    started: description
                        .start_date()
                        .to_owned()
                        .try_into()
                        .unwrap_or(SystemTime::now()),
                    stopped: description
                        .stop_date()
                        .and_then(|d| d.to_owned().try_into().ok())
                        .unwrap_or(SystemTime::now()),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn history(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>> {
        let mut events = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(execution_arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| clonesync::aws::fault::classify("states", "GetExecutionHistory", e))?;
            events.extend(page.events().iter().cloned());
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => return Ok(events),
            }
        }
    }

    /// The port the SDK clients reach moto on (its forwarder).
    pub fn moto_port(&self) -> u16 {
        self.moto.port
    }

    /// Every event delivered to the event handlers so far.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn registry(&self) -> Registry<'_> {
        self.cloud.registry()
    }

    /// Remove a pipeline that reached streaming: everything it is named
    /// for (subscription, slot, publication, clone, share) and its
    /// registry record. Each part is idempotent, so a second teardown
    /// finds nothing.
    pub async fn teardown(&self, state: &State) -> Result<CleanupTaskReport> {
        teardown(&*self.cloud, state).await
    }

    /// Re-seed through the real `setup.asl.json` (`"reseed": true` in its
    /// input): the old subscription, slot, publication and clone go, then
    /// the pipeline is set up again with the same names. As for
    /// [`LocalRuntime::teardown_by_state_machine`], this process's
    /// registry is first given the inventory (when it lacks it).
    pub async fn reseed(
        &self,
        name: &str,
        state: &State,
        input: &serde_json::Value,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<RunOutcome> {
        if self
            .registry()
            .get_pipeline(&state.pipeline.id)
            .await?
            .is_none()
        {
            self.registry()
                .put_pipeline(&inventory_of(state), &Expected::Absent)
                .await?;
        }
        let mut input = input.clone();
        if let Some(object) = input.as_object_mut() {
            object.insert("reseed".into(), serde_json::Value::Bool(true));
        }
        self.run(name, &input, progress).await
    }

    /// The same removal through the real `teardown.asl.json`, as
    /// `clonesync local down` does: this process's registry (moto's) starts
    /// empty, so the pipeline's inventory is first written from `state`
    /// (the work directory's record is the local inventory), then the
    /// teardown runs with `delete_clone` and `delete_share`.
    pub async fn teardown_by_state_machine(
        &self,
        state: &State,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<CleanupTaskReport> {
        let id = &state.pipeline.id;
        // A record already there (this process's own run) has the setup
        // execution, so a teardown under a running setup is still refused.
        if self.registry().get_pipeline(id).await?.is_none() {
            self.registry()
                .put_pipeline(&inventory_of(state), &Expected::Absent)
                .await?;
        }
        let name = format!("down-{id}-{}", std::process::id());
        let input =
            serde_json::json!({"pipeline_id": id, "delete_clone": true, "delete_share": true});
        let outcome = self.run_teardown(&name, &input, progress).await?;
        if !outcome.succeeded() {
            return Err(Error::local_server(format!(
                "teardown execution {}: {} {}",
                outcome.status,
                outcome.error.as_deref().unwrap_or(""),
                outcome.cause.as_deref().unwrap_or("")
            )));
        }
        let output = outcome.output.unwrap_or_default();
        let flag = |key: &str| output.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
        let databases = output
            .get("dropped")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Ok(CleanupTaskReport {
            databases: clonesync::steps::cleanup::CleanupReport {
                clone_deleted: flag("clone_deleted"),
                ..databases
            },
            share_deleted: flag("share_deleted"),
            inventory_removed: output.get("deregistered").is_some(),
        })
    }
}

/// The console input for a pipeline of the local source.
pub fn request(
    pipeline_id: &str,
    scope: serde_json::Value,
    database: &str,
    waits: Waits,
) -> serde_json::Value {
    serde_json::json!({
        "pipeline": {"id": pipeline_id, "scope": scope},
        "source": {
            "cluster_arn": format!("arn:aws:rds:{REGION}:{ACCOUNT}:cluster:local-source"),
            // Nominal: locally the login comes from the command line and
            // stays in this process; no secret is read.
            "secret_arn": format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:clonesync-local-source"),
            "database": database,
        },
        "clone": {"instance_class": "db.local"},
        "waits": waits,
    })
}

/// [`request`] over several databases (`source.databases`) with
/// `apply_groups` subscriptions each.
pub fn request_over(
    pipeline_id: &str,
    scope: serde_json::Value,
    databases: &clonesync::pipeline::DatabaseSelection,
    apply_groups: u32,
    waits: Waits,
) -> serde_json::Value {
    let mut input = request(pipeline_id, scope, "", waits);
    input["source"]
        .as_object_mut()
        .map(|source| source.remove("database"));
    input["source"]["databases"] = serde_json::json!(databases);
    if apply_groups != 1 {
        input["pipeline"]["apply_groups"] = serde_json::json!(apply_groups);
    }
    input
}

/// The console input that sets the pipeline of `state` up again, as it
/// was asked for (a re-seed): its scope, databases and apply groups.
pub fn request_again(state: &State, waits: Waits) -> serde_json::Value {
    let scope = serde_json::json!(state.pipeline.scope);
    let mut input = match &state.source.databases {
        Some(databases) => request_over(
            state.pipeline.id.as_str(),
            scope,
            databases,
            state.apply_groups,
            waits,
        ),
        None => request(
            state.pipeline.id.as_str(),
            scope,
            state.source.login_database(),
            waits,
        ),
    };
    if state.apply_groups != 1 {
        input["pipeline"]["apply_groups"] = serde_json::json!(state.apply_groups);
    }
    // Its own mark, an empty one too (a pipeline recorded before marks).
    input["pipeline"]["setup_mark"] = serde_json::json!(state.pipeline.setup_mark);
    input
}

/// The registry record of a local pipeline, from its setup state (however
/// far the setup got).
fn inventory_of(state: &State) -> clonesync::pipeline::PipelineRecord {
    let phase = if state.clone_info.is_some() {
        clonesync::pipeline::Phase::Streaming
    } else {
        clonesync::pipeline::Phase::SettingUp
    };
    state.record(phase, 0)
}

/// [`LocalRuntime::teardown`] on any cloud: the undo plan of everything
/// the pipeline is named for, then its registry record.
pub async fn teardown<C: Cloud>(cloud: &C, state: &State) -> Result<CleanupTaskReport> {
    let report = workflow::undo(cloud, state, &state.undo_everything()).await?;
    cloud
        .coordination()
        .delete_pipeline(&state.pipeline.id)
        .await?;
    Ok(report)
}

fn task_error(event: &HistoryEvent) -> Option<String> {
    match event.r#type() {
        HistoryEventType::LambdaFunctionFailed => event
            .lambda_function_failed_event_details()
            .and_then(|d| d.error())
            .map(str::to_string),
        HistoryEventType::TaskFailed => event
            .task_failed_event_details()
            .and_then(|d| d.error())
            .map(str::to_string),
        HistoryEventType::LambdaFunctionTimedOut | HistoryEventType::TaskTimedOut => {
            Some("States.Timeout".into())
        }
        _ => None,
    }
}

async fn deliver(
    mut events: mpsc::UnboundedReceiver<CloudEvent>,
    cloud: Arc<LocalCloud>,
    faults: Arc<Faults>,
    delivered: Arc<Mutex<Vec<Delivered>>>,
) {
    while let Some(event) = events.recv().await {
        let copies = match faults.delivery() {
            Delivery::Once => 1,
            Delivery::Twice => 2,
            Delivery::Never => 0,
        };
        if copies == 0 {
            tracing::info!(function = event.function, "event dropped (local run)");
        }
        for _ in 0..copies {
            let report = crate::iam::as_function(
                event.function,
                handlers::dispatch(&*cloud, event.function, event.event.clone()),
            )
            .await
                .and_then(|v| {
                    serde_json::from_value::<EventReport>(v)
                        .map_err(|e| Error::local_record("event report", e))
                })
                .map_err(|e| {
                    tracing::warn!(function = event.function, error = %e, kind = e.name(), "event handler failed");
                    e.to_string()
                });
            delivered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Delivered {
                    function: event.function,
                    report,
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_of_the_definition_names_a_function() {
        let definition = substitute(SETUP_ASL).unwrap();
        assert!(!definition.contains("${"));
        assert!(definition.contains(":function:clonesync-register-pipeline\""));
        assert!(substitute("{\"Resource\": \"${NoSuchArn}\"}").is_err());
    }
}
