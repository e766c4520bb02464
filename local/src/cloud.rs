//! The local cloud: it plays RAM and RDS for a local run, the way AWS
//! behaves from the workflow's side.
//!
//! - **Shares** are records in `shares.json` in the work directory. A new
//!   share's invitation appears after [`LocalCloud::share_delay`] (RAM's
//!   association is asynchronous too); then the RAM event AWS sends for an
//!   invitation is emitted.
//! - **Visibility**: an accepted share's cluster can stay invisible to the
//!   target for a while ([`LocalCloud::set_share_visibility_delay`]; none
//!   by default), as RAM associates the share asynchronously:
//!   `create_clone` answers `Clone.NotReady` until then, as the RDS
//!   adapter does for its "not found". A share that is not accepted yet
//!   always hides its cluster.
//! - **Clones** are made in the background, like a copy-on-write restore:
//!   `create_clone` starts the job and returns at once; `clone_status`
//!   answers `Clone.NotReady` until the clone is promoted, then the RDS
//!   cluster and instance "created" events are emitted. A failed job
//!   answers `Clone.Failed` and emits a failure event.
//! - **Events** go out on a channel with the JSON shapes EventBridge
//!   delivers; the runtime feeds them to the `ram-events` and `rds-events`
//!   handlers, which wake the workflow through the Step Functions API.
//!
//! The registry and the callbacks are the real DynamoDB and Step Functions
//! APIs (moto's), so every handler runs unchanged.
//!
//! Idempotent as the AWS calls are: a share is found again by its name
//! (`created_now: false`); accepting an accepted share is
//! `AlreadyAccepted`; `create_clone` on a clone being made starts nothing
//! new, and on a finished one reuses it (started if stopped); deleting
//! what is gone answers `false`.

use crate::clone::LocalControlPlane;
use crate::iam::{calls, Enforcer};
use crate::moto::{ACCOUNT, REGION, REGISTRY_TABLE};
use clonesync::aws::registry::Registry;
use clonesync::aws::runs::S3Runs;
use clonesync::aws::{AwsClients, StepFunctionsCoordination};
use clonesync::error::{Error, PreflightFailure, Result};
use clonesync::pg::{Endpoint, Lsn, SessionSettings};
use clonesync::pipeline::names::{share_name, writer_instance_id};
use clonesync::pipeline::{Accepted, CloneInfo, CloneSettings, Share, SourceCluster};
use clonesync::ports::{Clones, Cloud, ControlPlane, ResourceShare, SourceLogin};
use clonesync::workflow::events::{
    RAM_DETAIL_TYPE, RAM_SOURCE, RDS_CLUSTER_EVENT, RDS_INSTANCE_EVENT,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio_postgres::Client;

/// An event for one of the event handlers (`ram-events`, `rds-events`).
#[derive(Debug, Clone)]
pub struct CloudEvent {
    pub function: &'static str,
    pub event: serde_json::Value,
}

#[derive(Debug, Clone)]
enum CloneJob {
    Making,
    Failed(String),
    /// Deleted, but still listed as `deleting` until then, as RDS lists a
    /// cluster whose deletion it has accepted.
    Deleting(tokio::time::Instant),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LocalShare {
    arn: String,
    name: String,
    cluster_arn: String,
    invitation_arn: String,
    invited: bool,
    accepted: bool,
    /// Its `clonesync:pipeline` tag (absent in books of older runs).
    #[serde(default)]
    pipeline_id: String,
    /// When the invitation was accepted (ms since the epoch; 0: unknown).
    #[serde(default)]
    accepted_at_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The share records, read and written whole under a lock.
struct ShareBook {
    path: PathBuf,
    lock: Mutex<()>,
}

impl ShareBook {
    fn update<T>(&self, change: impl FnOnce(&mut Vec<LocalShare>) -> T) -> Result<T> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let what = || self.path.display().to_string();
        let mut shares: Vec<LocalShare> = match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::local_record(what(), e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::local_file("read", &self.path, e)),
        };
        let result = change(&mut shares);
        let text =
            serde_json::to_string_pretty(&shares).map_err(|e| Error::local_record(what(), e))?;
        // Written beside and renamed over: a process killed mid-write
        // leaves the old book or the new one, never a truncated file.
        let partial = self.path.with_extension("json.partial");
        std::fs::write(&partial, text).map_err(|e| Error::local_file("write", &partial, e))?;
        std::fs::rename(&partial, &self.path)
            .map_err(|e| Error::local_file("rename", &self.path, e))?;
        Ok(result)
    }
}

pub struct LocalCloud {
    plane: LocalControlPlane,
    region: String,
    account: String,
    registry_table: String,
    sfn: aws_sdk_sfn::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    shares: Arc<ShareBook>,
    jobs: Arc<Mutex<HashMap<String, CloneJob>>>,
    events: mpsc::UnboundedSender<CloudEvent>,
    /// When each clone became available (for the handoff timing).
    ready_at: Arc<Mutex<HashMap<String, SystemTime>>>,
    /// How long a new share's invitation takes to appear.
    pub share_delay: Duration,
    /// How long after its acceptance a shared cluster stays invisible to
    /// the target (RAM associates the share asynchronously; until then RDS
    /// answers "not found"), in ms.
    share_visibility_ms: Arc<std::sync::atomic::AtomicU64>,
    /// How long a deleted clone stays `deleting`, in ms.
    clone_deletion_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Source and target in one AWS Organization with sharing enabled:
    /// RAM sends no invitation, the share is associated directly.
    organization: Arc<std::sync::atomic::AtomicBool>,
    /// DB cluster parameter groups of the target account, by name: the
    /// settings a clone restored with that group gets. A clone without a
    /// group, or with one not defined here, keeps the source's settings.
    parameter_groups: Arc<Mutex<HashMap<String, GroupSettings>>>,
    /// IAM: each function's calls checked against its role (`None`: a
    /// cloud that reaches no AWS service, [`LocalCloud::offline`]).
    iam: Option<Arc<Enforcer>>,
}

/// A parameter group's settings, name and value.
type GroupSettings = Vec<(String, String)>;

/// Ids in events and ARNs: unique within a run.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}

fn now_text() -> String {
    aws_sdk_sfn::primitives::DateTime::from(SystemTime::now())
        .fmt(aws_sdk_sfn::primitives::DateTimeFormat::DateTime)
        .unwrap_or_default()
}

impl LocalCloud {
    /// The local cloud for clones of `plane`'s source, keeping its records
    /// in `work_dir`; events come out of the returned receiver.
    pub fn new(
        plane: LocalControlPlane,
        work_dir: &Path,
        clients: &AwsClients,
        region: &str,
        account: &str,
        registry_table: &str,
        iam: Option<Arc<Enforcer>>,
    ) -> (LocalCloud, mpsc::UnboundedReceiver<CloudEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let cloud = LocalCloud {
            plane,
            region: region.to_string(),
            account: account.to_string(),
            registry_table: registry_table.to_string(),
            sfn: clients.sfn.clone(),
            dynamodb: clients.dynamodb.clone(),
            s3: clients.s3.clone(),
            shares: Arc::new(ShareBook {
                path: work_dir.join("shares.json"),
                lock: Mutex::new(()),
            }),
            jobs: Arc::new(Mutex::new(HashMap::new())),
            events,
            ready_at: Arc::new(Mutex::new(HashMap::new())),
            // Long enough that the share wait's first look, even on a
            // loaded machine, comes before the invitation: the wait then
            // really depends on the event (or its polling fallback), as
            // with RAM, instead of finding the share ready by chance.
            share_delay: Duration::from_millis(1500),
            // Off unless a run asks for it: when it catches CreateClone,
            // the state machine asks again 5 s later, which every local
            // setup would pay (measured: a kill-sweep case 9 s -> 16 s).
            share_visibility_ms: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            clone_deletion_ms: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            organization: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            parameter_groups: Arc::default(),
            iam,
        };
        (cloud, receiver)
    }

    /// A local cloud without the AWS services behind it, for reading the
    /// databases only (the lag monitor's [`clonesync::monitor::check`]). Its
    /// registry and Step Functions clients point at a closed port: a call
    /// to them fails, it never reaches anything.
    pub fn offline(plane: LocalControlPlane, work_dir: &Path) -> LocalCloud {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url("http://127.0.0.1:1")
            .build();
        let clients = AwsClients::from_configs(&config, &config);
        let (cloud, _events) = LocalCloud::new(
            plane,
            work_dir,
            &clients,
            REGION,
            ACCOUNT,
            REGISTRY_TABLE,
            None,
        );
        cloud
    }

    /// Play source and target as accounts of one AWS Organization with
    /// sharing enabled: no invitation, no RAM event, the share associated
    /// at once (`Accepted::NoInvitationNeeded`).
    pub fn set_organization(&self, on: bool) {
        self.organization
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn in_organization(&self) -> bool {
        self.organization.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Set how long an accepted share's cluster stays invisible.
    pub fn set_share_visibility_delay(&self, delay: Duration) {
        self.share_visibility_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// `Clone.NotReady` while `cluster_arn` is shared with this account
    /// but not visible yet: its share not accepted, or accepted less than
    /// the visibility delay ago. A cluster no share names is the local
    /// source played without RAM (the library's own tests).
    fn shared_cluster_visible(&self, clone_id: &str, cluster_arn: &str) -> Result<()> {
        let delay = self
            .share_visibility_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        let shares = self.shares.update(|shares| {
            shares
                .iter()
                .filter(|s| s.cluster_arn == cluster_arn)
                .map(|s| (s.accepted, s.accepted_at_ms))
                .collect::<Vec<_>>()
        })?;
        let now = now_ms();
        let visible = shares.is_empty()
            || shares
                .iter()
                .any(|(accepted, at)| *accepted && now >= at.saturating_add(delay));
        if visible {
            Ok(())
        } else {
            Err(Error::CloneNotReady {
                clone_id: clone_id.to_string(),
                status: format!(
                    "the shared cluster {cluster_arn} is not visible in this account yet (the RAM share's association is not active)"
                ),
            })
        }
    }

    /// The IAM decisions of this run (empty for an offline cloud).
    pub fn iam(&self) -> Option<&Arc<Enforcer>> {
        self.iam.as_ref()
    }

    /// Authorize what the AWS adapter would call for one port operation.
    fn authorize(
        &self,
        calls: impl FnOnce(&crate::iam::Substitutions) -> Vec<calls::Call>,
    ) -> Result<()> {
        match &self.iam {
            Some(iam) => iam.authorize_calls(&calls(iam.substitutions())),
            None => Ok(()),
        }
    }

    /// The registry table in moto.
    pub fn registry(&self) -> Registry<'_> {
        Registry {
            client: &self.dynamodb,
            table: &self.registry_table,
        }
    }

    pub fn control_plane(&self) -> &LocalControlPlane {
        &self.plane
    }

    /// The ARN the local source plays under (input validation wants one).
    pub fn source_cluster_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:rds:{}:{}:cluster:{name}",
            self.region, self.account
        )
    }

    /// When the clone `clone_id` became available, if it has.
    pub fn clone_ready_at(&self, clone_id: &str) -> Option<SystemTime> {
        self.ready_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(clone_id)
            .copied()
    }

    fn job(&self, clone_id: &str) -> Option<CloneJob> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        match jobs.get(clone_id) {
            Some(CloneJob::Deleting(until)) if *until <= tokio::time::Instant::now() => {
                jobs.remove(clone_id);
                None
            }
            other => other.cloned(),
        }
    }

    /// Set how long a deleted clone stays `deleting` before it is gone
    /// (RDS takes minutes; 0, the default, removes it at once).
    /// Define a DB cluster parameter group: a clone restored with it
    /// (`clone.db_cluster_parameter_group`) starts with these settings, as
    /// an Aurora clone takes its group's, not the source's.
    pub fn define_parameter_group(&self, name: &str, settings: &[(&str, &str)]) {
        self.parameter_groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.to_string(),
                settings
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
    }

    pub fn set_clone_deletion_delay(&self, delay: Duration) {
        self.clone_deletion_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn rds_event(
        &self,
        detail_type: &str,
        kind: &str,
        id: &str,
        message: &str,
        event_id: Option<&str>,
    ) -> CloudEvent {
        let arn = format!("arn:aws:rds:{}:{}:{kind}:{id}", self.region, self.account);
        let mut detail = serde_json::json!({
            "EventCategories": [if event_id.is_some() { "creation" } else { "failure" }],
            "SourceType": if kind == "cluster" { "CLUSTER" } else { "DB_INSTANCE" },
            "SourceArn": arn,
            "Date": now_text(),
            "Message": message,
            // As in AWS's published samples ("rds:my-db-cluster").
            "SourceIdentifier": format!("rds:{id}"),
        });
        if let Some(event_id) = event_id {
            detail["EventID"] = event_id.into();
        }
        CloudEvent {
            function: "rds-events",
            event: serde_json::json!({
                "version": "0",
                "id": unique_suffix(),
                "detail-type": detail_type,
                "source": "aws.rds",
                "account": self.account,
                "time": now_text(),
                "region": self.region,
                "resources": [arn],
                "detail": detail,
            }),
        }
    }

    fn ram_event(&self, invitation_arn: &str) -> CloudEvent {
        CloudEvent {
            function: "ram-events",
            event: serde_json::json!({
                "version": "0",
                "id": unique_suffix(),
                "detail-type": RAM_DETAIL_TYPE,
                "source": RAM_SOURCE,
                "account": self.account,
                "time": now_text(),
                "region": self.region,
                "resources": [invitation_arn],
                "detail": {"event": "Resource Share Invitation", "status": "PENDING"},
            }),
        }
    }

    /// Start making the clone in the background unless it exists or is on
    /// its way.
    fn start_clone(&self, clone_id: &str, parameter_group: Option<&str>) -> Result<()> {
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(jobs.get(clone_id), Some(CloneJob::Making)) {
                return Ok(());
            }
            jobs.insert(clone_id.to_string(), CloneJob::Making);
        }
        let group_settings = parameter_group
            .and_then(|name| {
                self.parameter_groups
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(name)
                    .cloned()
            })
            .unwrap_or_default();
        let plane = self.plane.clone().with_clone_settings(group_settings);
        let jobs = self.jobs.clone();
        let ready_at = self.ready_at.clone();
        let clone_id = clone_id.to_string();
        let created = [
            self.rds_event(
                RDS_CLUSTER_EVENT,
                "cluster",
                &clone_id,
                "DB cluster created",
                Some("RDS-EVENT-0170"),
            ),
            self.rds_event(
                RDS_INSTANCE_EVENT,
                "db",
                &writer_instance_id(&clone_id),
                "DB instance created",
                Some("RDS-EVENT-0005"),
            ),
        ];
        let failed = self.rds_event(
            RDS_CLUSTER_EVENT,
            "cluster",
            &clone_id,
            "clone failed",
            None,
        );
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = plane.create_clone(&clone_id).await;
            let mut jobs = jobs.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(_) => {
                    jobs.remove(&clone_id);
                    ready_at
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(clone_id.clone(), SystemTime::now());
                    drop(jobs);
                    for event in created {
                        let _ = events.send(event);
                    }
                }
                Err(e) => {
                    tracing::error!(clone = %clone_id, error = %e, "local clone failed");
                    jobs.insert(clone_id.clone(), CloneJob::Failed(e.to_string()));
                    drop(jobs);
                    let _ = events.send(failed);
                }
            }
        });
        Ok(())
    }

    async fn status_of(&self, clone_id: &str) -> Result<CloneInfo> {
        match self.job(clone_id) {
            Some(CloneJob::Making) => Err(Error::CloneNotReady {
                clone_id: clone_id.to_string(),
                status: "creating".into(),
            }),
            Some(CloneJob::Failed(reason)) => Err(Error::CloneFailed {
                reason,
                cause: None,
            }),
            Some(CloneJob::Deleting(_)) => Err(Error::CloneNotReady {
                clone_id: clone_id.to_string(),
                status: "deleting".into(),
            }),
            None => self.plane.clone_status(clone_id).await,
        }
    }
}

/// The control plane a step gets: the local one, with the clone made in
/// the background as in the cloud.
pub struct LocalCloudPlane<'a> {
    cloud: &'a LocalCloud,
    pipeline_id: String,
    source_cluster: String,
    clone: CloneSettings,
}

impl ControlPlane for LocalCloudPlane<'_> {
    async fn preflight(&self) -> Result<Vec<PreflightFailure>> {
        self.cloud
            .authorize(|subs| calls::preflight(subs, &self.source_cluster))?;
        self.cloud.plane.preflight().await
    }

    /// Finished: reuse it (started if stopped). Else start the job and
    /// answer with the clone's id; its address comes with `clone_status`.
    async fn create_clone(&self, clone_id: &str) -> Result<CloneInfo> {
        self.cloud.authorize(|subs| {
            calls::create_clone(
                subs,
                &self.pipeline_id,
                clone_id,
                &self.source_cluster,
                &self.clone,
            )
        })?;
        if let Some(CloneJob::Deleting(_)) = self.cloud.job(clone_id) {
            // RDS lists the old cluster until it is gone; the AWS adapter
            // finds it, ours but not available, and asks again later.
            return Err(Error::CloneNotReady {
                clone_id: clone_id.to_string(),
                status: "deleting".into(),
            });
        }
        if self.cloud.job(clone_id).is_none() {
            if let Ok(info) = self.cloud.plane.clone_status(clone_id).await {
                return self.cloud.plane.create_clone(&info.clone_id).await;
            }
            self.cloud
                .shared_cluster_visible(clone_id, &self.source_cluster)?;
        }
        self.cloud
            .start_clone(clone_id, self.clone.db_cluster_parameter_group.as_deref())?;
        Ok(CloneInfo {
            clone_id: clone_id.to_string(),
            host: String::new(),
            port: 0,
        })
    }

    async fn clone_start_lsn(&self, clone: &CloneInfo, clone_client: &Client) -> Result<Lsn> {
        self.cloud.plane.clone_start_lsn(clone, clone_client).await
    }

    /// Waits for a clone job still running, so its files are not removed
    /// under it.
    async fn delete_clone(&self, clone_id: &str) -> Result<bool> {
        self.cloud
            .authorize(|subs| calls::delete_clone(subs, clone_id))?;
        let deadline = tokio::time::Instant::now() + self.cloud.plane.promote_timeout * 2;
        while matches!(self.cloud.job(clone_id), Some(CloneJob::Making)) {
            if tokio::time::Instant::now() > deadline {
                return Err(Error::LocalTimedOut {
                    what: format!("clone {clone_id} is still being made"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if matches!(self.cloud.job(clone_id), Some(CloneJob::Deleting(_))) {
            // Asked again while RDS deletes it: the AWS adapter takes
            // InvalidDBClusterState on a `deleting` cluster as done.
            return Ok(true);
        }
        self.cloud
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(clone_id);
        let deleted = self.cloud.plane.delete_clone(clone_id).await?;
        let delay = self
            .cloud
            .clone_deletion_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if deleted && delay > 0 {
            self.cloud
                .jobs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    clone_id.to_string(),
                    CloneJob::Deleting(tokio::time::Instant::now() + Duration::from_millis(delay)),
                );
        }
        Ok(deleted)
    }

    async fn source_login(&self) -> Result<SourceLogin> {
        self.cloud.authorize(calls::source_login)?;
        self.cloud.plane.source_login().await
    }

    /// No clone secret locally: the source's login, as on AWS without
    /// `clone.secret_arn`.
    async fn clone_endpoint(&self, clone: &CloneInfo) -> Result<Endpoint> {
        self.cloud.authorize(calls::source_login)?;
        self.cloud.plane.clone_endpoint(clone).await
    }

    /// The same GetSecretValue as the current login, with a version stage.
    async fn previous_clone_endpoint(&self, clone: &CloneInfo) -> Result<Option<Endpoint>> {
        self.cloud.authorize(calls::source_login)?;
        self.cloud.plane.previous_clone_endpoint(clone).await
    }

    fn session(&self) -> SessionSettings {
        self.cloud.plane.session()
    }

    fn extra_senders(&self) -> i64 {
        self.cloud.plane.extra_senders()
    }

    fn clone_session(&self) -> SessionSettings {
        self.cloud.plane.clone_session()
    }
}

impl Cloud for LocalCloud {
    type Clones = LocalCloud;
    type Share = LocalCloud;
    type Coordination<'a> = StepFunctionsCoordination<'a>;
    type Runs<'a> = S3Runs<'a>;

    fn clones(&self) -> &LocalCloud {
        self
    }

    fn share(&self) -> &LocalCloud {
        self
    }

    /// The real DynamoDB and Step Functions code, against moto.
    fn coordination(&self) -> StepFunctionsCoordination<'_> {
        StepFunctionsCoordination {
            registry: self.registry(),
            sfn: &self.sfn,
        }
    }

    /// The real S3 code, against moto's bucket.
    fn runs(&self) -> Result<S3Runs<'_>> {
        Ok(S3Runs {
            client: &self.s3,
            bucket: crate::moto::RUNS_BUCKET,
        })
    }

    fn region(&self) -> &str {
        &self.region
    }
}

impl Clones for LocalCloud {
    type Plane<'a> = LocalCloudPlane<'a>;

    /// One local source: every pipeline's plane is the same.
    fn plane_for<'a>(
        &'a self,
        pipeline: &clonesync::pipeline::PipelineSpec,
        source: &SourceCluster,
        clone: &CloneSettings,
    ) -> LocalCloudPlane<'a> {
        LocalCloudPlane {
            cloud: self,
            pipeline_id: pipeline.id.to_string(),
            source_cluster: source.cluster_arn.clone(),
            clone: clone.clone(),
        }
    }

    async fn clone_status(&self, _pipeline_id: &str, clone_id: &str) -> Result<CloneInfo> {
        self.authorize(|subs| calls::clone_status(subs, clone_id))?;
        self.status_of(clone_id).await
    }

    async fn clone_exists(&self, clone_id: &str) -> Result<bool> {
        self.authorize(|subs| calls::clone_exists(subs, clone_id))?;
        Ok(matches!(
            self.job(clone_id),
            Some(CloneJob::Making | CloneJob::Deleting(_))
        ) || self.plane.clone_exists(clone_id)?)
    }
}

/// RAM, played locally: shares in `shares.json`.
impl ResourceShare for LocalCloud {
    async fn share_cluster(
        &self,
        pipeline_id: &str,
        _setup_mark: &str,
        cluster_arn: &str,
    ) -> Result<Share> {
        let name = share_name(pipeline_id);
        let arn = format!(
            "arn:aws:ram:{}:{}:resource-share/{}",
            self.region,
            self.account,
            unique_suffix()
        );
        let invitation_arn = format!(
            "arn:aws:ram:{}:{}:resource-share-invitation/{}",
            self.region,
            self.account,
            unique_suffix()
        );
        let new = LocalShare {
            arn,
            name: name.clone(),
            cluster_arn: cluster_arn.to_string(),
            invitation_arn,
            invited: false,
            accepted: false,
            pipeline_id: pipeline_id.to_string(),
            accepted_at_ms: 0,
        };
        let exists = self
            .shares
            .update(|shares| shares.iter().any(|s| s.name == name))?;
        self.authorize(|subs| calls::share_cluster(subs, pipeline_id, cluster_arn, !exists))?;
        let (share, created_now) =
            self.shares
                .update(|shares| match shares.iter().find(|s| s.name == name) {
                    Some(existing) => (existing.clone(), false),
                    None => {
                        shares.push(new.clone());
                        (new, true)
                    }
                })?;
        // A new share's invitation appears a little later, with its event;
        // so does that of a share whose invitation a killed run never
        // sent (the re-run must not wait out its timeout for it).
        if (created_now || !share.invited) && !self.in_organization() {
            let book = self.shares.clone();
            let delay = self.share_delay;
            let event = self.ram_event(&share.invitation_arn);
            let events = self.events.clone();
            let arn = share.arn.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let invited = book.update(|shares| {
                    shares
                        .iter_mut()
                        .find(|s| s.arn == arn && !s.invited)
                        .map(|s| s.invited = true)
                        .is_some()
                });
                if matches!(invited, Ok(true)) {
                    // A closed channel means nobody listens any more: like
                    // an event EventBridge could not deliver.
                    let _ = events.send(event);
                }
            });
        }
        Ok(Share {
            share_arn: share.arn,
            name,
            created_now,
        })
    }

    async fn accept_share(&self, share_arn: &str) -> Result<Accepted> {
        let invitation = self.shares.update(|shares| {
            shares
                .iter()
                .find(|s| s.arn == share_arn)
                .map(|s| s.invitation_arn.clone())
        })?;
        self.authorize(|_| calls::accept_share(invitation.as_deref().unwrap_or("*")))?;
        let organization = self.in_organization();
        self.shares.update(|shares| {
            let Some(share) = shares.iter_mut().find(|s| s.arn == share_arn) else {
                return Err(Error::ShareFailed {
                    share: share_arn.to_string(),
                    reason: "no such resource share".into(),
                });
            };
            if organization {
                // Associated at once: no invitation to accept.
                if !share.accepted {
                    share.accepted = true;
                    share.accepted_at_ms = now_ms();
                }
                return Ok(Accepted::NoInvitationNeeded);
            }
            if !share.invited {
                return Err(Error::ShareNotReady {
                    share_arn: share_arn.to_string(),
                    status: "no invitation yet".into(),
                });
            }
            let invitation_arn = share.invitation_arn.clone();
            if share.accepted {
                Ok(Accepted::AlreadyAccepted { invitation_arn })
            } else {
                share.accepted = true;
                share.accepted_at_ms = now_ms();
                Ok(Accepted::AcceptedNow { invitation_arn })
            }
        })?
    }

    async fn share_of_invitation(&self, invitation_arn: &str) -> Result<Option<String>> {
        self.authorize(|_| calls::share_of_invitation())?;
        self.shares.update(|shares| {
            shares
                .iter()
                .find(|s| s.invitation_arn == invitation_arn)
                .map(|s| s.arn.clone())
        })
    }

    async fn delete_share(&self, share_arn: &str) -> Result<bool> {
        let pipeline_id = self.shares.update(|shares| {
            shares
                .iter()
                .find(|s| s.arn == share_arn && !s.pipeline_id.is_empty())
                .map(|s| s.pipeline_id.clone())
        })?;
        // A share RAM no longer has answers "unknown resource" before
        // any tag can be read: authorized only when it exists.
        if let Some(id) = &pipeline_id {
            self.authorize(|_| calls::delete_share(share_arn, id))?;
        }
        self.shares.update(|shares| {
            let before = shares.len();
            shares.retain(|s| s.arn != share_arn);
            shares.len() != before
        })
    }
}
