//! A pipeline's life after setup, on real servers through the real
//! handlers: pause and resume under writes (the monitor says paused, not
//! broken), and a slot PostgreSQL invalidates (the monitor says lost).

use clonesync::handlers::dispatch;
use clonesync::monitor::{self, MonitorReport};
use clonesync::pipeline::{Phase, Waits};
use clonesync_local::LocalRuntime;
use clonesync_tests::fixture::{connect, DB};
use clonesync_tests::{
    compare_tables, create_schema, tables_in, wait_for_marker, TestEnv, Workload,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SCHEMAS: &[&str] = &["public", "Sales Schema"];

async fn streaming(env: &TestEnv, id: &str) -> (LocalRuntime, clonesync::workflow::State) {
    let (runtime, state, _) = clonesync_tests::pipeline::streaming_pipeline(env, id).await;
    (runtime, state)
}

/// The monitor's report and its EMF documents.
async fn read(runtime: &LocalRuntime) -> (MonitorReport, Vec<Value>) {
    let (report, lines) = monitor::run(&*runtime.cloud, 1_795_000_000_000)
        .await
        .expect("monitor run");
    let docs = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("EMF line"))
        .collect();
    (report, docs)
}

fn metric(docs: &[Value], dimension: (&str, &str), name: &str) -> f64 {
    docs.iter()
        .find(|d| d[dimension.0] == dimension.1 && d[name].is_number())
        .and_then(|d| d[name].as_f64())
        .unwrap_or_else(|| panic!("no {name} for {dimension:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_under_writes_reads_as_paused_and_resume_catches_up_equal() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let load = Workload::start(env.source_endpoint(), 2, 21, Duration::from_millis(2));
    load.wait_for_more(50).await;
    let (runtime, state) = streaming(&env, "pz").await;
    let cloud = &*runtime.cloud;

    let paused = dispatch(cloud, "pause-pipeline", json!({"pipeline_id": "pz"}))
        .await
        .unwrap();
    assert_eq!(paused["phase"], "paused");
    assert_eq!(paused["changed"], true);
    let again = dispatch(cloud, "pause-pipeline", json!({"pipeline_id": "pz"}))
        .await
        .unwrap();
    assert_eq!(again["changed"], false, "pausing twice is pausing once");
    let record = runtime
        .registry()
        .get_pipeline(&"pz".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.phase, Phase::Paused);

    let started = Instant::now();
    let mut retained_before = None;
    while started.elapsed() < Duration::from_secs(30) {
        let (report, docs) = read(&runtime).await;
        let t = &report.targets[0];
        assert!(t.paused && !t.enabled, "{t:?}");
        let service = ("Service", "clonesync");
        assert_eq!(metric(&docs, ("Pipeline", "pz"), "Paused"), 1.0);
        assert_eq!(metric(&docs, service, "PipelinesPaused"), 1.0);
        assert_eq!(
            metric(&docs, service, "PipelinesNotApplying"),
            0.0,
            "a paused pipeline is not a broken one"
        );
        if !t.apply_worker {
            // Once the worker is gone the slot is inactive, and still not
            // counted as a forgotten one.
            assert_eq!(metric(&docs, service, "InactiveSlots"), 0.0);
            let retained = metric(&docs, service, "MaxRetainedBytes");
            retained_before.get_or_insert(retained);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let (_, docs) = read(&runtime).await;
    let retained = metric(&docs, ("Service", "clonesync"), "MaxRetainedBytes");
    assert!(
        retained > retained_before.expect("the worker stopped within 30 s"),
        "retained WAL grows while paused (and still alarms): {retained_before:?} -> {retained}"
    );

    let resumed = dispatch(cloud, "resume-pipeline", json!({"pipeline_id": "pz"}))
        .await
        .unwrap();
    assert_eq!(resumed["phase"], "streaming");
    load.wait_for_more(100).await;
    let stats = load.stop().await;
    assert!(stats.committed > 500, "{stats:?}");
    let target = connect(&env.plane.clone_login(state.clone_info().unwrap())).await;
    wait_for_marker(&source, &target, Duration::from_secs(120))
        .await
        .unwrap();
    let tables = tables_in(&source, SCHEMAS).await;
    let (states, differences) = compare_tables(&source, &target, &tables).await;
    assert_eq!(states.len(), 8);
    assert!(differences.is_empty(), "tables differ: {differences:#?}");
    let (report, docs) = read(&runtime).await;
    assert!(!report.targets[0].paused && report.targets[0].enabled);
    assert_eq!(
        metric(&docs, ("Service", "clonesync"), "PipelinesPaused"),
        0.0
    );

    for (function, input, error) in [
        (
            "pause-pipeline",
            json!({"pipeline_id": "nobody"}),
            "Pipeline.Unknown",
        ),
        (
            "resume-pipeline",
            json!({"pipeline": "pz"}),
            "Input.Invalid",
        ),
    ] {
        let e = dispatch(cloud, function, input).await.unwrap_err();
        assert_eq!(e.name(), error, "{e}");
    }
    runtime.teardown(&state).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_slot_shows_as_lost_and_a_reseed_brings_the_copy_back_equal() {
    let env = TestEnv::start_with_setting("max_slot_wal_keep_size", "32MB").await;
    let source = env.source_client().await;
    create_schema(&source).await;
    source
        .batch_execute("CREATE TABLE public.filler (id bigint PRIMARY KEY, pad text NOT NULL)")
        .await
        .unwrap();
    let load = Workload::start(env.source_endpoint(), 2, 31, Duration::from_millis(5));
    load.wait_for_more(50).await;
    let (runtime, state) = streaming(&env, "lost").await;
    let cloud = &*runtime.cloud;
    dispatch(cloud, "pause-pipeline", json!({"pipeline_id": "lost"}))
        .await
        .unwrap();

    // Far more WAL than the slot may keep, then checkpoints: PostgreSQL
    // invalidates the paused slot.
    let deadline = Instant::now() + Duration::from_secs(120);
    let lost = loop {
        source
            .batch_execute(
                "INSERT INTO public.filler SELECT g, repeat('x', 1000) \
                 FROM generate_series(coalesce((SELECT max(id) FROM public.filler), 0) + 1, \
                                      coalesce((SELECT max(id) FROM public.filler), 0) + 40000) g; \
                 CHECKPOINT",
            )
            .await
            .unwrap();
        let (report, docs) = read(&runtime).await;
        let slot = report
            .slots()
            .find(|(_, s)| s.slot == "clonesync_lost")
            .map(|(_, s)| s.clone())
            .expect("the pipeline's slot is still listed");
        if slot.is_lost() {
            break (slot, docs);
        }
        assert!(
            Instant::now() < deadline,
            "the slot was never invalidated: {slot:?}"
        );
    };
    let (slot, docs) = lost;
    assert_eq!(slot.wal_status.as_deref(), Some("lost"), "{slot:?}");
    assert_eq!(metric(&docs, ("Slot", "clonesync_lost"), "SlotLost"), 1.0);
    assert_eq!(metric(&docs, ("Service", "clonesync"), "LostSlots"), 1.0);

    // Re-seed: the setup state machine with "reseed": true.
    let input = runtime.request("lost", json!({"kind": "all_tables"}), DB, Waits::default());
    let outcome = runtime
        .reseed("reseed-lost", &state, &input, &mut |_| {})
        .await
        .unwrap();
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    assert!(
        outcome.exited_at("ReseedDeleteClone").is_some(),
        "the old clone went first"
    );
    let state = outcome.state().unwrap();
    let record = runtime
        .registry()
        .get_pipeline(&"lost".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.phase, Phase::Streaming);
    load.wait_for_more(100).await;
    load.stop().await;
    let target = connect(&env.plane.clone_login(state.clone_info().unwrap())).await;
    wait_for_marker(&source, &target, Duration::from_secs(120))
        .await
        .unwrap();
    let tables = tables_in(&source, SCHEMAS).await;
    let (states, differences) = compare_tables(&source, &target, &tables).await;
    assert_eq!(states.len(), 9, "the schema's 8 tables and the filler");
    assert!(differences.is_empty(), "tables differ: {differences:#?}");
    let (_, docs) = read(&runtime).await;
    assert_eq!(metric(&docs, ("Service", "clonesync"), "LostSlots"), 0.0);
    assert_eq!(
        env.clone_dirs().len(),
        1,
        "one clone: the old one was deleted"
    );
    runtime.teardown(&state).await.unwrap();
}

/// After a switchover the copy is standalone: the finish records the
/// pipeline as switched over, resume and a setup run again are refused by
/// name (either would replicate onto the copy), pausing keeps it switched
/// over, and the subscription stays disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switched_over_pipeline_refuses_resume_and_a_setup_run_again() {
    use clonesync::workflow::switchover;
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let (runtime, state) = streaming(&env, "sw").await;
    let cloud = &*runtime.cloud;
    let finished = switchover::finish(
        cloud,
        &switchover::Switchover {
            pipeline_id: "sw".parse().unwrap(),
            quiet_seconds: 0,
            source_stopped: true,
            drop_source_objects: false,
            headroom: Default::default(),
            catch_up_seconds: 30,
            verify: Default::default(),
            marker: None,
            quiet_wal_bytes: None,
            caught_up_at: None,
        },
    )
    .await
    .expect("switchover finish");
    assert!(finished.subscriptions_disabled, "{finished:?}");
    let phase = |record: Option<clonesync::pipeline::PipelineRecord>| {
        record.expect("still registered").phase
    };
    let registry = runtime.registry();
    assert_eq!(
        phase(registry.get_pipeline(&"sw".parse().unwrap()).await.unwrap()),
        Phase::SwitchedOver
    );

    let resumed = dispatch(cloud, "resume-pipeline", json!({"pipeline_id": "sw"})).await;
    assert_eq!(
        resumed.as_ref().map_err(|e| e.name()).err(),
        Some("Pipeline.SwitchedOver"),
        "{resumed:?}"
    );
    let paused = dispatch(cloud, "pause-pipeline", json!({"pipeline_id": "sw"}))
        .await
        .unwrap();
    assert_eq!(paused["phase"], "switched_over");

    let again = runtime
        .run(
            "setup-sw-again",
            &clonesync_local::runtime::request_again(
                &state,
                clonesync_tests::pipeline::short_waits(),
            ),
            &mut |_| {},
        )
        .await
        .expect("setup ran");
    assert!(!again.succeeded(), "{again:?}");
    assert_eq!(
        again.error.as_deref(),
        Some("Pipeline.SwitchedOver"),
        "{again:?}"
    );
    assert_eq!(
        phase(registry.get_pipeline(&"sw".parse().unwrap()).await.unwrap()),
        Phase::SwitchedOver
    );
    let info = state.clone_info().unwrap();
    let target = connect(&env.plane.clone_login(info)).await;
    let enabled: bool = target
        .query_one(
            "SELECT subenabled FROM pg_subscription WHERE subname = 'clonesync_sw'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!enabled, "the copy takes no more replication");
}

/// One id, one owner, in the registry: a setup run again with a new
/// request (which draws a new mark) keeps the registered pipeline's setup
/// mark and finds its objects its own; a setup of the registered id for
/// another source cluster is refused by name and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_id_keeps_its_setup_mark_and_takes_no_other_source() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let (runtime, state) = streaming(&env, "owned").await;
    let mark = state.pipeline.setup_mark.clone();
    assert_eq!(mark.len(), 16, "a setup draws a mark: {mark:?}");
    let comment = || async {
        source
            .query_one(
                "SELECT obj_description(oid, 'pg_publication') FROM pg_catalog.pg_publication \
                 WHERE pubname = 'clonesync_owned'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, String>(0)
    };
    assert_eq!(
        comment().await,
        format!("clonesync pipeline owned setup {mark}")
    );

    let mut fresh =
        clonesync_local::runtime::request_again(&state, clonesync_tests::pipeline::short_waits());
    fresh["pipeline"]
        .as_object_mut()
        .unwrap()
        .remove("setup_mark");
    let again = runtime
        .run("setup-owned-again", &fresh, &mut |_| {})
        .await
        .expect("setup ran");
    assert!(again.succeeded(), "{again:?}");
    assert_eq!(again.state().unwrap().pipeline.setup_mark, mark);
    let record = runtime
        .registry()
        .get_pipeline(&"owned".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.pipeline.setup_mark, mark);
    assert_eq!(
        comment().await,
        format!("clonesync pipeline owned setup {mark}")
    );

    let mut elsewhere = fresh.clone();
    let other_cluster = state
        .source
        .cluster_arn
        .replace(":cluster:", ":cluster:other-");
    elsewhere["source"]["cluster_arn"] = json!(other_cluster);
    let refused = runtime
        .run("setup-owned-elsewhere", &elsewhere, &mut |_| {})
        .await
        .expect("setup ran");
    assert!(!refused.succeeded(), "{refused:?}");
    assert_eq!(
        refused.error.as_deref(),
        Some("Preflight.Failed"),
        "{refused:?}"
    );
    let cause = refused.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("pipeline_id") && cause.contains("registered for source cluster"),
        "{cause}"
    );
    let record = runtime
        .registry()
        .get_pipeline(&"owned".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.phase, Phase::Streaming);
    assert_eq!(record.source.cluster_arn, state.source.cluster_arn);
    let slots: i64 = source
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'clonesync_owned' AND active",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 1, "the live slot is still consumed");
    clonesync_tests::pipeline::teardown_with_clone(&runtime, "owned").await;
}
