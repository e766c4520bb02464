//! Running the steps in order against a [`TestEnv`], recording what each
//! stage created, as the state machine will.

use crate::fixture::{connect, TestEnv};
use clonesync::pg::{Lsn, Secret};
use clonesync::pipeline::CloneInfo;
use clonesync::pipeline::{PipelineSpec, UndoPlan};
use clonesync::ports::ControlPlane;
use clonesync::steps::{
    advance_and_enable, clean_inherited, clone, clone_lsn, create_subscription, prepare_source,
    verify,
};
use serde::Serialize;
use std::time::Duration;
use tokio_postgres::Client;

/// Short waits, so the polling fallback is reached within a test.
pub fn short_waits() -> clonesync::pipeline::Waits {
    clonesync::pipeline::Waits {
        share_timeout_seconds: 4,
        share_heartbeat_seconds: 3,
        clone_timeout_seconds: 8,
        clone_heartbeat_seconds: 6,
    }
}

/// How far a run goes before it stops (as if the next step failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Prepared,
    Cloned,
    Subscribed,
    Enabled,
}

pub const STAGES: [Stage; 4] = [
    Stage::Prepared,
    Stage::Cloned,
    Stage::Subscribed,
    Stage::Enabled,
];

/// Run the steps up to and including `stage`; returns what was created and
/// a client on the clone when there is one.
pub async fn run_until(
    env: &TestEnv,
    spec: &PipelineSpec,
    stage: Stage,
) -> (UndoPlan, Option<(CloneInfo, Client)>) {
    let mut source = env.source_client().await;
    let mut created = UndoPlan::default();
    env.preflight(spec).await.expect("preflight");
    let prepared = prepare_source::run(&mut source, spec)
        .await
        .expect("prepare source");
    created.publication = prepared.publication_created;
    created.slot = prepared.slot_created;
    if stage == Stage::Prepared {
        return (created, None);
    }
    let info = clone::run(&env.plane, spec).await.expect("clone");
    created.clone = Some(info.clone_id.clone());
    let target = connect(&env.plane.clone_login(&info)).await;
    if stage == Stage::Cloned {
        return (created, Some((info, target)));
    }
    let range = clone_lsn::run(
        &env.plane,
        &source,
        &target,
        spec,
        &info,
        prepared.consistent_lsn,
    )
    .await
    .expect("clone LSN");
    clean_inherited::run(&target, spec)
        .await
        .expect("clean inherited");
    create_subscription::run(&target, spec, &env.source_endpoint().conninfo())
        .await
        .expect("create subscription");
    created.subscription = true;
    if stage == Stage::Subscribed {
        return (created, Some((info, target)));
    }
    advance_and_enable::run(&target, spec, range.clone_lsn)
        .await
        .expect("advance and enable");
    verify::run(&source, &target, spec, Duration::from_secs(30))
        .await
        .expect("verify");
    (created, Some((info, target)))
}

/// Slots and publications on a server, by name.
pub async fn slots_and_publications(client: &Client) -> (Vec<String>, Vec<String>) {
    let slots = client
        .query(
            "SELECT slot_name::text FROM pg_replication_slots ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let publications = client
        .query("SELECT pubname::text FROM pg_publication ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (slots, publications)
}

/// What the attach steps returned.
#[derive(Debug, Clone, Serialize)]
pub struct Attached {
    pub range: clone_lsn::CloneLsn,
    pub cleaned: clean_inherited::Cleaned,
    pub subscription: create_subscription::SubscriptionCreated,
    pub enabled: advance_and_enable::Enabled,
    pub verification: verify::Verification,
}

/// The steps after the clone, in order: clone LSN and its range check,
/// clean what the clone inherited, subscription, advance and enable,
/// verify. Panics (fails the test) on any error.
pub async fn attach<P: ControlPlane>(
    plane: &P,
    source: &Client,
    target: &Client,
    info: &CloneInfo,
    spec: &PipelineSpec,
    slot_consistent_lsn: Lsn,
    source_conninfo: &Secret,
) -> Attached {
    let range = clone_lsn::run(plane, source, target, spec, info, slot_consistent_lsn)
        .await
        .expect("clone LSN in range");
    let cleaned = clean_inherited::run(target, spec)
        .await
        .expect("clean inherited");
    let subscription = create_subscription::run(target, spec, source_conninfo)
        .await
        .expect("create subscription");
    let enabled = advance_and_enable::run(target, spec, range.clone_lsn)
        .await
        .expect("advance and enable");
    let verification = verify::run(source, target, spec, Duration::from_secs(30))
        .await
        .expect("verify");
    Attached {
        range,
        cleaned,
        subscription,
        enabled,
        verification,
    }
}

/// A pipeline of all tables of `env`'s source set up through the real
/// setup state machine (default waits): the runtime, the final state and a
/// session on the clone. Panics (fails the test) unless it streams.
pub async fn streaming_pipeline(
    env: &TestEnv,
    id: &str,
) -> (
    clonesync_local::LocalRuntime,
    clonesync::workflow::State,
    Client,
) {
    let runtime =
        clonesync_local::LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
            .await
            .expect("local runtime");
    let input = runtime.request(
        id,
        serde_json::json!({"kind": "all_tables"}),
        crate::fixture::DB,
        clonesync::pipeline::Waits::default(),
    );
    let outcome = runtime
        .run(&format!("setup-{id}"), &input, &mut |_| {})
        .await
        .expect("setup ran");
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    let state = outcome.state().expect("the state");
    let target = connect(
        &runtime
            .cloud
            .control_plane()
            .clone_login(state.clone_info().expect("the clone")),
    )
    .await;
    (runtime, state, target)
}

/// The teardown state machine, clone included; it must succeed.
pub async fn teardown_with_clone(runtime: &clonesync_local::LocalRuntime, id: &str) {
    let teardown = runtime
        .run_teardown(
            &format!("teardown-{id}"),
            &serde_json::json!({"pipeline_id": id, "delete_clone": true}),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert!(
        teardown.succeeded(),
        "{:?} {:?}",
        teardown.error,
        teardown.cause
    );
}
