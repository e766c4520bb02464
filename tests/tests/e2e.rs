//! End to end: the real `statemachine/setup.asl.json` executed by moto's
//! Step Functions engine, its Lambda tasks served by the real handlers in
//! this process, the local cloud making the clone and emitting the RAM and
//! RDS events, against real servers under a concurrent write load.

use clonesync_local::invoke::{Delivery, Fault};
use clonesync_local::runtime::{Progress, RunOutcome};
use clonesync_local::LocalRuntime;
use clonesync_tests::fixture::{connect, DB};
use clonesync_tests::pipeline::{short_waits, slots_and_publications};
use clonesync_tests::{
    compare_tables, create_schema, tables_in, wait_for_marker, TestEnv, Workload,
};
use serde_json::json;
use std::time::Duration;

const SCHEMAS: &[&str] = &["public", "Sales Schema"];

struct Run {
    env: TestEnv,
    runtime: LocalRuntime,
}

async fn setup() -> Run {
    let env = TestEnv::start().await;
    create_schema(&env.source_client().await).await;
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("local runtime");
    Run { env, runtime }
}

impl Run {
    fn input(&self, pipeline: &str) -> serde_json::Value {
        self.runtime
            .request(pipeline, json!({"kind": "all_tables"}), DB, short_waits())
    }

    async fn execute(&self, name: &str, input: &serde_json::Value) -> (RunOutcome, Vec<Progress>) {
        let mut seen = Vec::new();
        let outcome = tokio::time::timeout(
            Duration::from_secs(240),
            self.runtime.run(name, input, &mut |p| seen.push(p.clone())),
        )
        .await
        .expect("the execution ended within 4 minutes")
        .expect("run");
        (outcome, seen)
    }

    /// Tear the streaming pipeline down; then nothing may be left.
    async fn teardown(&self, outcome: &RunOutcome) {
        self.runtime
            .teardown(&outcome.state().unwrap())
            .await
            .unwrap();
        self.assert_nothing_left().await;
    }

    /// The source holds no slot or publication; no clone server runs.
    async fn assert_nothing_left(&self) {
        let source = self.env.source_client().await;
        let (slots, publications) = slots_and_publications(&source).await;
        assert!(slots.is_empty(), "slots left: {slots:?}");
        assert!(
            publications.is_empty(),
            "publications left: {publications:?}"
        );
        assert_eq!(self.env.running_servers(), 0, "a clone server still runs");
    }
}

fn assert_succeeded(outcome: &RunOutcome) {
    assert!(
        outcome.succeeded(),
        "{} {:?} {:?}",
        outcome.status,
        outcome.error,
        outcome.cause
    );
}

fn entered(progress: &[Progress], state: &str) -> usize {
    progress
        .iter()
        .filter(|p| matches!(p, Progress::Entered { state: s, .. } if s == state))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_state_machine_hands_off_under_load_and_teardown_leaves_nothing() {
    let run = setup().await;
    let load = Workload::start(run.env.source_endpoint(), 2, 11, Duration::from_millis(2));
    load.wait_for_more(100).await;

    let (outcome, progress) = run.execute("happy", &run.input("e2e_happy")).await;
    assert_succeeded(&outcome);
    let state = outcome.state().unwrap();
    assert!(
        state.created.source.as_ref().unwrap().slot,
        "this run made the slot"
    );
    assert_eq!(entered(&progress, "WaitForClone"), 1);
    assert_eq!(entered(&progress, "PollClone"), 0, "events woke the waits");
    assert_eq!(entered(&progress, "Cleanup"), 0);
    // The events reached the handlers and woke both waits.
    let woken: Vec<String> = run
        .runtime
        .delivered()
        .into_iter()
        .filter_map(|d| d.report.ok())
        .flat_map(|r| r.woken)
        .collect();
    assert!(
        woken.iter().any(|w| w.contains(":resource-share/")),
        "{woken:?}"
    );
    assert!(woken.contains(&state.clone_id), "{woken:?}");
    assert!(run
        .runtime
        .registry()
        .get_pipeline(&"e2e_happy".parse().unwrap())
        .await
        .unwrap()
        .is_some());

    load.wait_for_more(200).await;
    let stats = load.stop().await;
    assert!(stats.committed > 300);
    let source = run.env.source_client().await;
    let info = state.clone_info().unwrap();
    let target = connect(&run.env.plane.clone_login(info)).await;
    wait_for_marker(&source, &target, Duration::from_secs(60))
        .await
        .unwrap();
    let tables = tables_in(&source, SCHEMAS).await;
    let (states, differences) = compare_tables(&source, &target, &tables).await;
    assert_eq!(states.len(), 8, "every table of the schema compared");
    assert!(differences.is_empty(), "tables differ: {differences:#?}");
    drop(target);

    let report = run.runtime.teardown(&state).await.unwrap();
    assert!(report.databases.slot_dropped, "{report:?}");
    run.assert_nothing_left().await;
    assert!(run
        .runtime
        .registry()
        .get_pipeline(&"e2e_happy".parse().unwrap())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transient_failure_is_retried_and_the_run_succeeds() {
    let run = setup().await;
    run.runtime.faults.add(Fault {
        function: "create-subscription".into(),
        error_type: "Transient.Database".into(),
        times: Some(1),
    });
    let (outcome, progress) = run.execute("transient", &run.input("e2e_transient")).await;
    assert_succeeded(&outcome);
    assert!(progress.iter().any(|p| matches!(p,
        Progress::TaskFailed { state, error } if state == "CreateSubscription" && error == "Transient.Database")));
    let calls: Vec<_> = run
        .runtime
        .faults
        .invocations()
        .into_iter()
        .filter(|i| i.function == "create-subscription")
        .collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].injected && calls[1].error_type.is_none());
    run.teardown(&outcome).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lasting_failure_after_the_slot_runs_cleanup_and_fails_with_its_name() {
    let run = setup().await;
    run.runtime.faults.add(Fault {
        function: "verify".into(),
        error_type: "Verify.NotStreaming".into(),
        times: None,
    });
    let (outcome, progress) = run.execute("lasting", &run.input("e2e_lasting")).await;
    assert_eq!(outcome.status, "FAILED");
    assert_eq!(outcome.error.as_deref(), Some("Verify.NotStreaming"));
    assert_eq!(entered(&progress, "Cleanup"), 1);
    assert!(
        outcome.exited_at("PrepareSource").is_some(),
        "the slot was made before the failure"
    );
    run.assert_nothing_left().await;
    assert!(
        run.env.clone_dirs().is_empty(),
        "{:?}",
        run.env.clone_dirs()
    );
}

/// An Aurora clone takes its settings from its own cluster parameter
/// group, not from the source whose settings preflight read. A group with
/// no room for an apply worker fails the setup at CreateSubscription with
/// the clone's own figures and where to raise them, before any
/// subscription exists; cleanup leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clone_whose_parameter_group_has_no_room_for_the_subscription_is_named() {
    let run = setup().await;
    run.runtime
        .cloud
        .define_parameter_group("no-workers", &[("max_logical_replication_workers", "0")]);
    let mut input = run.input("e2e_limits");
    input["clone"]["db_cluster_parameter_group"] = json!("no-workers");
    let (outcome, progress) = run.execute("limits", &input).await;
    assert_eq!(outcome.status, "FAILED");
    assert_eq!(outcome.error.as_deref(), Some("Clone.LimitsTooLow"));
    let cause = outcome.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("max_logical_replication_workers = 0 on the clone; 1 needed")
            && cause.contains("clone.db_cluster_parameter_group"),
        "{cause}"
    );
    assert_eq!(entered(&progress, "AdvanceAndEnable"), 0);
    assert_eq!(entered(&progress, "Cleanup"), 1);
    run.assert_nothing_left().await;
    assert!(
        run.env.clone_dirs().is_empty(),
        "{:?}",
        run.env.clone_dirs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicated_events_are_ignored_the_second_time() {
    let run = setup().await;
    run.runtime.faults.set_delivery(Delivery::Twice);
    let (outcome, _) = run.execute("twice", &run.input("e2e_twice")).await;
    assert_succeeded(&outcome);
    let delivered = run.runtime.delivered();
    let woken: usize = delivered
        .iter()
        .filter_map(|d| d.report.as_ref().ok())
        .map(|r| r.woken.len())
        .sum();
    let ignored: usize = delivered
        .iter()
        .filter_map(|d| d.report.as_ref().ok())
        .map(|r| r.ignored.len())
        .sum();
    // One RAM event and two RDS events (cluster, instance), each twice.
    assert_eq!(delivered.len(), 6, "{delivered:?}");
    assert!(delivered.iter().all(|d| d.report.is_ok()), "{delivered:?}");
    assert_eq!(woken, 2, "each wait woken once: {delivered:?}");
    assert_eq!(ignored, 4, "every other copy finds no wait: {delivered:?}");
    run.teardown(&outcome).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_events_the_polling_fallback_finishes_the_run() {
    let run = setup().await;
    run.runtime.faults.set_delivery(Delivery::Never);
    let (outcome, progress) = run.execute("lost", &run.input("e2e_lost")).await;
    assert_succeeded(&outcome);
    assert_eq!(entered(&progress, "PollShare"), 1, "{progress:?}");
    assert_eq!(entered(&progress, "PollClone"), 1, "{progress:?}");
    assert!(run.runtime.delivered().is_empty());
    run.teardown(&outcome).await;
}

/// RAM as documented: a shared cluster reads as not found for some time
/// after the invitation is accepted. CreateClone answers `Clone.NotReady`
/// meanwhile (nothing is made), the state machine asks again, and the run
/// succeeds with one clone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_cluster_not_yet_visible_is_asked_again_and_the_run_succeeds() {
    let run = setup().await;
    run.runtime
        .cloud
        .set_share_visibility_delay(Duration::from_secs(3));
    let (outcome, progress) = run.execute("invisible", &run.input("e2e_invisible")).await;
    assert_succeeded(&outcome);
    let refused: Vec<&Progress> = progress
        .iter()
        .filter(|p| {
            matches!(p, Progress::TaskFailed { state, error }
                if state == "CreateClone" && error == "Clone.NotReady")
        })
        .collect();
    assert!(
        !refused.is_empty(),
        "the clone was made before the share was visible: {progress:?}"
    );
    assert_eq!(entered(&progress, "Cleanup"), 0);
    assert_eq!(run.env.clone_dirs().len(), 1, "one clone");
    run.teardown(&outcome).await;
}

/// RAM in an AWS Organization with sharing enabled: no invitation and no
/// RAM event; the share wait completes itself (the association is there)
/// and the run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_an_organization_there_is_no_invitation_and_the_run_succeeds() {
    let run = setup().await;
    run.runtime.cloud.set_organization(true);
    let (outcome, progress) = run.execute("organization", &run.input("e2e_org")).await;
    assert_succeeded(&outcome);
    assert_eq!(entered(&progress, "PollShare"), 0, "{progress:?}");
    assert!(
        run.runtime
            .delivered()
            .iter()
            .all(|d| d.function != "ram-events"),
        "a RAM event was delivered in an organization"
    );
    run.teardown(&outcome).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn running_the_same_input_again_converges_without_creating_twice() {
    let run = setup().await;
    let input = run.input("e2e_again");
    let (first, _) = run.execute("first", &input).await;
    assert_succeeded(&first);
    let (second, progress) = run.execute("second", &input).await;
    assert_succeeded(&second);
    // Share and clone are ready already: each wait completes its own task,
    // no timeout, no poll.
    assert_eq!(entered(&progress, "PollShare"), 0, "{progress:?}");
    assert_eq!(entered(&progress, "PollClone"), 0, "{progress:?}");
    let (a, b) = (first.state().unwrap(), second.state().unwrap());
    // `created.source` says the pipeline owns the slot and publication
    // (for cleanup), not that this run made them: count them instead.
    assert!(!b.created.subscription.as_ref().unwrap()[0].created_now);
    assert!(!b.share.as_ref().unwrap().created_now);
    assert_eq!(
        a.share,
        b.share.as_ref().map(|s| clonesync::pipeline::Share {
            created_now: true,
            ..s.clone()
        })
    );
    assert_eq!(a.clone_info, b.clone_info, "the same clone");
    assert_eq!(run.env.clone_dirs().len(), 1);
    let source = run.env.source_client().await;
    let (slots, publications) = slots_and_publications(&source).await;
    assert_eq!(slots, ["clonesync_e2e_again"]);
    assert_eq!(publications, ["clonesync_e2e_again"]);
    let target = connect(&run.env.plane.clone_login(b.clone_info().unwrap())).await;
    let subscriptions = target
        .query_one("SELECT count(*) FROM pg_subscription", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(subscriptions, 1);
    drop(target);
    run.runtime.teardown(&b).await.unwrap();
    run.assert_nothing_left().await;
}
