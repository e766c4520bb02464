//! What each state of `statemachine/setup.asl.json` runs: one function per
//! Lambda task, taking the typed state and returning the piece the ASL
//! puts at its `ResultPath` (JSON is [`crate::handlers`]' business). The
//! functions are generic over the ports ([`crate::ports`]), so the same
//! code runs against AWS ([`crate::aws::AwsCloud`]) and against local
//! servers.
//!
//! Idempotency is the steps' own (see each `steps::*` module): every task
//! may be retried or run again on the same state.

pub mod events;
pub mod lifecycle;
pub mod state;
pub mod waits;

use crate::error::Result;
use crate::pg::{connect, Endpoint};
use crate::pipeline::{CloneInfo, OwnedShare, Phase, PipelineRecord, Share, UndoPlan};
use crate::ports::{Clones, Cloud, ControlPlane, Coordination, ResourceShare};
use crate::steps;
use serde::{Deserialize, Serialize};
pub use state::{CreatedState, SourceCreated, State};
use std::time::Duration;
use tokio_postgres::Client;

/// How long `verify` waits for the apply worker and the slot to be active.
pub const VERIFY_WAIT: Duration = Duration::from_secs(60);

/// The control plane for the pipeline of `state`.
pub fn plane<'a, C: Cloud>(cloud: &'a C, state: &State) -> <C::Clones as Clones>::Plane<'a> {
    cloud
        .clones()
        .plane_for(state.pipeline.id.as_str(), &state.source, &state.clone)
}

async fn open<P: ControlPlane>(plane: &P, endpoint: &Endpoint) -> Result<Client> {
    connect(endpoint, &plane.session()).await
}

async fn source<P: ControlPlane>(plane: &P) -> Result<Client> {
    open(plane, &plane.source_endpoint().await?).await
}

async fn clone<P: ControlPlane>(plane: &P, state: &State) -> Result<Client> {
    let endpoint = plane.clone_endpoint(state.clone_info()?).await?;
    connect(&endpoint, &plane.clone_session()).await
}

pub async fn preflight<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::preflight::PreflightReport> {
    let source = source(plane).await?;
    steps::preflight::run(
        plane,
        &source,
        None,
        &state.pipeline,
        plane.extra_senders(),
        state.waits.slot_idle_window(),
    )
    .await
}

pub async fn prepare_source<P: ControlPlane>(plane: &P, state: &State) -> Result<SourceCreated> {
    let mut source = source(plane).await?;
    let prepared = steps::prepare_source::run(&mut source, &state.pipeline).await?;
    Ok(SourceCreated {
        publication: prepared.publication_created,
        slot: prepared.slot_created,
        slot_consistent_lsn: prepared.consistent_lsn,
    })
}

pub async fn share_cluster<C: Cloud>(cloud: &C, state: &State) -> Result<Share> {
    cloud
        .share()
        .share_cluster(state.pipeline.id.as_str(), &state.source.cluster_arn)
        .await
}

pub async fn create_clone<P: ControlPlane>(plane: &P, state: &State) -> Result<CloneInfo> {
    steps::clone::run(plane, &state.pipeline).await
}

pub async fn clone_lsn<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::clone_lsn::CloneLsn> {
    let source = source(plane).await?;
    let target = clone(plane, state).await?;
    steps::clone_lsn::run(
        plane,
        &source,
        &target,
        &state.pipeline,
        state.clone_info()?,
        state.slot_consistent_lsn()?,
    )
    .await
}

pub async fn clean_inherited<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::clean_inherited::Cleaned> {
    let target = clone(plane, state).await?;
    steps::clean_inherited::run(&target, &state.pipeline).await
}

pub async fn create_subscription<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::create_subscription::SubscriptionCreated> {
    let target = clone(plane, state).await?;
    // The subscription's connection string holds the source login; it is
    // built here and passed as a bind parameter, never logged.
    let sslmode = plane.session().tls.subscription_sslmode();
    let conninfo = plane
        .source_endpoint()
        .await?
        .conninfo_with_sslmode(sslmode);
    steps::create_subscription::run(&target, &state.pipeline, &conninfo).await
}

pub async fn advance_and_enable<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::advance_and_enable::Enabled> {
    let target = clone(plane, state).await?;
    steps::advance_and_enable::run(&target, &state.pipeline, state.clone_lsn()?).await
}

pub async fn verify<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::verify::Verification> {
    let source = source(plane).await?;
    let target = clone(plane, state).await?;
    steps::verify::run(&source, &target, &state.pipeline, VERIFY_WAIT).await
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub pipeline: String,
    pub registered_at: u64,
}

/// Complete the pipeline's inventory and mark it streaming, for the lag
/// monitor and teardown (a put: idempotent).
pub async fn register<C: Cloud>(cloud: &C, state: &State) -> Result<Registered> {
    // A share is reused only when it carries this pipeline's name and tag
    // (a re-run, a re-seed): it is this pipeline's either way.
    let share = state.share.as_ref().map(|share| OwnedShare {
        arn: share.share_arn.clone(),
        created: true,
    });
    let record = PipelineRecord {
        pipeline: state.pipeline.clone(),
        source: state.source.clone(),
        clone: state.clone.clone(),
        clone_info: Some(state.clone_info()?.clone()),
        clone_id: Some(state.clone_id.clone()),
        share,
        setup_execution: state.setup_execution(),
        phase: Phase::Streaming,
        registered_at: seconds_now(),
    };
    cloud.coordination().put_pipeline(&record).await?;
    tracing::info!(pipeline = %state.pipeline.id, "pipeline registered for monitoring");
    Ok(Registered {
        pipeline: state.pipeline.id.to_string(),
        registered_at: record.registered_at,
    })
}

pub(crate) fn seconds_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Undo the databases and clone of `created` (see [`undo`] for the
/// share). The target is optional: an unreachable clone must never keep
/// the source slot alive.
pub async fn cleanup<P: ControlPlane>(
    plane: &P,
    state: &State,
    created: &UndoPlan,
) -> Result<steps::cleanup::CleanupReport> {
    let source = source(plane).await?;
    let target = match (created.subscription, state.clone_info()) {
        (true, Ok(info)) => match plane.clone_endpoint(info).await {
            Ok(endpoint) => connect(&endpoint, &plane.clone_session())
                .await
                .map_err(|e| tracing::warn!(error = %e, kind = e.name(), "clone unreachable; dropping the source side only"))
                .ok(),
            Err(e) => {
                tracing::warn!(error = %e, kind = e.name(), "no clone login; dropping the source side only");
                None
            }
        },
        _ => None,
    };
    steps::cleanup::run(plane, &source, target.as_ref(), &state.pipeline, created).await
}

/// What the cleanup task did: the databases and the clone, then the share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupTaskReport {
    #[serde(flatten)]
    pub databases: steps::cleanup::CleanupReport,
    pub share_deleted: bool,
    /// The inventory record a failed setup wrote, removed after its
    /// cleanup (the cleanup task's; a local teardown leaves it false).
    #[serde(default)]
    pub inventory_removed: bool,
}

/// Carry out an undo plan: [`cleanup`], then the RAM share it names. Both
/// parts are attempted; the first error is returned. The setup's cleanup
/// task undoes [`State::undo_plan`]; a teardown, [`State::undo_everything`].
pub async fn undo<C: Cloud>(
    cloud: &C,
    state: &State,
    plan: &UndoPlan,
) -> Result<CleanupTaskReport> {
    // Boxed: the nested async state machines would otherwise exceed the
    // compiler's type-layout depth in the cleanup binary.
    let databases = Box::pin(cleanup(&plane(cloud, state), state, plan)).await;
    let share = match &plan.share {
        Some(share_arn) => cloud.share().delete_share(share_arn).await,
        None => Ok(false),
    };
    match (databases, share) {
        (Ok(databases), Ok(share_deleted)) => Ok(CleanupTaskReport {
            databases,
            share_deleted,
            inventory_removed: false,
        }),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
