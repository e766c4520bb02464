//! Teardown through the real `statemachine/teardown.asl.json` (moto's
//! engine, the real handlers, real servers): from a streaming pipeline
//! under a write load and from each stage of a failed setup whose own
//! cleanup failed too; only the pipeline's objects go; a second teardown,
//! an unknown pipeline and a malformed input are named errors that touch
//! nothing.

use clonesync::pipeline::Waits;
use clonesync_local::invoke::Fault;
use clonesync_local::runtime::RunOutcome;
use clonesync_local::LocalRuntime;
use clonesync_tests::fixture::{connect, DB};
use clonesync_tests::{
    compare_tables, create_schema, tables_in, wait_for_marker, TestEnv, Workload,
};
use serde_json::{json, Value};
use std::time::Duration;

const SCHEMAS: &[&str] = &["public", "Sales Schema"];

struct Run {
    env: TestEnv,
    runtime: LocalRuntime,
    /// Execution names are unique per state machine.
    runs: std::sync::atomic::AtomicUsize,
}

async fn start() -> Run {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    // What is not the pipeline's: the user's own publication and a slot
    // whose name only resembles the pipeline's.
    source
        .batch_execute("CREATE PUBLICATION users_own FOR TABLE public.accounts")
        .await
        .expect("the user's publication");
    source
        .execute(
            "SELECT pg_create_logical_replication_slot('clonesync_td_other', 'pgoutput')",
            &[],
        )
        .await
        .expect("an unowned slot");
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("local runtime");
    Run {
        env,
        runtime,
        runs: Default::default(),
    }
}

impl Run {
    async fn setup(&self, id: &str) -> RunOutcome {
        let input = self.runtime.request(
            id,
            json!({"kind": "all_tables"}),
            DB,
            clonesync_tests::pipeline::short_waits(),
        );
        tokio::time::timeout(
            Duration::from_secs(240),
            self.runtime.run(
                &format!(
                    "setup-{id}-{}",
                    self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ),
                &input,
                &mut |_| {},
            ),
        )
        .await
        .expect("setup ended within 4 minutes")
        .expect("setup ran")
    }

    async fn teardown(&self, name: &str, input: Value) -> RunOutcome {
        tokio::time::timeout(
            Duration::from_secs(120),
            self.runtime.run_teardown(name, &input, &mut |_| {}),
        )
        .await
        .expect("teardown ended within 2 minutes")
        .expect("teardown ran")
    }

    /// Slots and publications on the source, by name.
    async fn source_objects(&self) -> (Vec<String>, Vec<String>) {
        let source = self.env.source_client().await;
        clonesync_tests::pipeline::slots_and_publications(&source).await
    }

    /// Nothing of pipeline `id` is left on the source or in the registry,
    /// and what is not its own is untouched.
    async fn assert_gone(&self, id: &str) {
        let (slots, publications) = self.source_objects().await;
        let name = format!("clonesync_{id}");
        assert!(!slots.contains(&name), "slot left: {slots:?}");
        assert!(
            !publications.contains(&name),
            "publication left: {publications:?}"
        );
        assert!(
            slots.contains(&"clonesync_td_other".to_string()),
            "{slots:?}"
        );
        assert!(
            publications.contains(&"users_own".to_string()),
            "{publications:?}"
        );
        let registry = self.runtime.registry();
        assert!(
            registry
                .get_pipeline(&id.parse().unwrap())
                .await
                .unwrap()
                .is_none(),
            "record left"
        );
        let clone_id = clonesync::pipeline::names::clone_id(id);
        assert!(
            registry
                .get_wait(clonesync::pipeline::WaitKind::Clone, &clone_id)
                .await
                .unwrap()
                .is_none(),
            "the clone wait is left"
        );
    }
}

fn assert_failed_with(outcome: &RunOutcome, name: &str) {
    assert_eq!(outcome.status, "FAILED", "{outcome:?}");
    assert_eq!(outcome.error.as_deref(), Some(name), "{:?}", outcome.cause);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_streaming_pipeline_under_load_is_torn_down_and_a_second_teardown_finds_nothing() {
    let run = start().await;
    let load = Workload::start(run.env.source_endpoint(), 2, 11, Duration::from_millis(2));
    load.wait_for_more(100).await;
    let outcome = run.setup("td").await;
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    let state = outcome.state().unwrap();
    let record = run
        .runtime
        .registry()
        .get_pipeline(&"td".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.phase, clonesync::pipeline::Phase::Streaming);
    assert_eq!(record.clone_id(), Some(state.clone_id.as_str()));
    assert!(
        record.share.as_ref().is_some_and(|s| s.created),
        "{record:?}"
    );
    assert!(record
        .setup_execution
        .as_deref()
        .is_some_and(|e| e.contains("setup-td")));

    load.wait_for_more(200).await;
    let stats = load.stop().await;
    assert!(stats.committed > 300);
    let source = run.env.source_client().await;
    let target = connect(&run.env.plane.clone_login(state.clone_info().unwrap())).await;
    wait_for_marker(&source, &target, Duration::from_secs(60))
        .await
        .unwrap();

    // Writes go on during the teardown; the copy keeps what it had.
    let load = Workload::start(run.env.source_endpoint(), 2, 12, Duration::from_millis(2));
    load.wait_for_more(50).await;
    let torn = run.teardown("td-1", json!({"pipeline_id": "td"})).await;
    assert!(torn.succeeded(), "{:?} {:?}", torn.error, torn.cause);
    load.stop().await;
    run.assert_gone("td").await;
    let subscriptions: i64 = target
        .query_one("SELECT count(*) FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        subscriptions, 0,
        "the subscription is dropped on the kept clone"
    );
    assert_eq!(
        run.env.clone_dirs().len(),
        1,
        "delete_clone defaults to false"
    );
    // The kept copy still has every table.
    let tables = tables_in(&target, SCHEMAS).await;
    assert_eq!(tables.len(), 8);

    let again = run.teardown("td-2", json!({"pipeline_id": "td"})).await;
    assert_failed_with(&again, "Pipeline.Unknown");
    run.assert_gone("td").await;

    // The clone goes on request. (A new setup of "td" would adopt the
    // kept clone and refuse its old LSN, Clone.LsnOutOfRange: a kept copy
    // is deleted or re-seeded before the pipeline is made again.)
    drop(target);
    let outcome = run.setup("td_del").await;
    assert!(outcome.succeeded(), "{:?}", outcome.cause);
    let target = connect(
        &run.env
            .plane
            .clone_login(outcome.state().unwrap().clone_info().unwrap()),
    )
    .await;
    wait_for_marker(&source, &target, Duration::from_secs(60))
        .await
        .unwrap();
    let (_, differences) =
        compare_tables(&source, &target, &tables_in(&source, SCHEMAS).await).await;
    assert!(differences.is_empty(), "the copy differs: {differences:#?}");
    drop(target);
    // RDS keeps a deleted cluster listed as `deleting` for minutes: the
    // clone is not gone yet (clone-gone is Clone.NotReady, which the ASL
    // retries), and a second deletion meanwhile is no error.
    run.runtime
        .cloud
        .set_clone_deletion_delay(Duration::from_secs(3));
    let call = |function: &'static str, payload: Value| {
        clonesync::handlers::dispatch(&*run.runtime.cloud, function, payload)
    };
    let teardown_input = call("load-pipeline", json!({"pipeline_id": "td_del"}))
        .await
        .unwrap();
    let mut deleting = teardown_input.clone();
    deleting["delete_clone"] = json!(true);
    assert_eq!(
        call("delete-clone", deleting.clone()).await.unwrap(),
        json!(true)
    );
    let not_yet = call("clone-gone", deleting.clone()).await.unwrap_err();
    assert_eq!(not_yet.name(), "Clone.NotReady", "{not_yet}");
    assert_eq!(
        call("delete-clone", deleting.clone()).await.unwrap(),
        json!(true),
        "deleting a clone RDS is deleting is done, not an error"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    call("clone-gone", deleting).await.unwrap();
    run.runtime.cloud.set_clone_deletion_delay(Duration::ZERO);
    let torn = run
        .teardown(
            "td-3",
            json!({"pipeline_id": "td_del", "delete_clone": true}),
        )
        .await;
    assert!(torn.succeeded(), "{:?} {:?}", torn.error, torn.cause);
    run.assert_gone("td_del").await;
    assert_eq!(
        run.env.clone_dirs().len(),
        1,
        "only the kept clone of td is left: {:?}",
        run.env.clone_dirs()
    );
}

/// Setup fails for good at `function` and its own cleanup fails too: the
/// inventory stays, and teardown removes everything the run made.
async fn teardown_after_a_failure_at(run: &Run, id: &str, function: &str) {
    for f in [function, "cleanup"] {
        run.runtime.faults.add(Fault {
            function: f.into(),
            error_type: "Database.Failed".into(),
            times: None,
        });
    }
    let outcome = run.setup(id).await;
    assert_failed_with(&outcome, "Database.Failed");
    run.runtime.faults.clear();
    let record = run
        .runtime
        .registry()
        .get_pipeline(&id.parse().unwrap())
        .await
        .unwrap();
    assert!(
        record.is_some(),
        "{function}: the inventory outlives a failed cleanup"
    );
    let torn = run
        .teardown(
            &format!("td-{id}"),
            json!({"pipeline_id": id, "delete_clone": true}),
        )
        .await;
    assert!(
        torn.succeeded(),
        "{function}: {:?} {:?}",
        torn.error,
        torn.cause
    );
    run.assert_gone(id).await;
    assert!(
        run.env.clone_dirs().is_empty(),
        "{function}: {:?}",
        run.env.clone_dirs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teardown_removes_what_a_failed_setup_left_at_each_stage() {
    let run = start().await;
    let load = Workload::start(run.env.source_endpoint(), 2, 13, Duration::from_millis(5));
    load.wait_for_more(50).await;
    for (id, function) in [
        ("td_prep", "prepare-source"),
        ("td_share", "share-cluster"),
        ("td_clone", "clone-lsn"),
        ("td_sub", "advance-and-enable"),
        ("td_verify", "verify"),
    ] {
        teardown_after_a_failure_at(&run, id, function).await;
    }
    load.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_teardown_input_is_named_and_touches_nothing() {
    let run = start().await;
    let before = run.source_objects().await;
    for (name, input, error) in [
        (
            "unknown",
            json!({"pipeline_id": "nobody_here"}),
            "Pipeline.Unknown",
        ),
        ("malformed", json!({"pipeline": "x"}), "Input.Invalid"),
        (
            "bad-flag",
            json!({"pipeline_id": "x", "delete_clone": "yes"}),
            "Input.Invalid",
        ),
        (
            "bad-id",
            json!({"pipeline_id": "Robert'); DROP"}),
            "Input.Invalid",
        ),
    ] {
        let outcome = run.teardown(name, input).await;
        assert_failed_with(&outcome, error);
    }
    assert_eq!(run.source_objects().await, before);

    // While its setup runs, a pipeline's teardown is refused.
    run.runtime.faults.add(Fault {
        function: "clone-lsn".into(),
        error_type: "Transient.Database".into(),
        times: Some(3),
    });
    let input = run.runtime.request(
        "td_busy",
        json!({"kind": "all_tables"}),
        DB,
        Waits::default(),
    );
    let running = run
        .runtime
        .start_execution("setup-td_busy", &input)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while run
        .runtime
        .registry()
        .get_pipeline(&"td_busy".parse().unwrap())
        .await
        .unwrap()
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "no inventory written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = run
        .teardown("busy", json!({"pipeline_id": "td_busy"}))
        .await;
    assert_failed_with(&refused, "Pipeline.SetupRunning");
    let finished = run.runtime.watch_execution(&running).await.unwrap();
    assert!(finished.succeeded(), "{:?}", finished.cause);
    let torn = run
        .teardown(
            "after",
            json!({"pipeline_id": "td_busy", "delete_clone": true}),
        )
        .await;
    assert!(torn.succeeded(), "{:?}", torn.cause);
    run.assert_gone("td_busy").await;
}

/// Setup may reuse a user's publication of the right scope under the
/// pipeline's publication name without marking it; teardown leaves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reused_user_publication_survives_the_teardown() {
    let run = start().await;
    let source = run.env.source_client().await;
    source
        .batch_execute("CREATE PUBLICATION users_all FOR ALL TABLES")
        .await
        .unwrap();
    let mut input = run.runtime.request(
        "td_pub",
        json!({"kind": "all_tables"}),
        DB,
        Waits::default(),
    );
    input["pipeline"]["publication"] = json!("users_all");
    let outcome = run
        .runtime
        .run("setup-td_pub", &input, &mut |_| {})
        .await
        .unwrap();
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    let torn = run
        .teardown(
            "td-pub",
            json!({"pipeline_id": "td_pub", "delete_clone": true}),
        )
        .await;
    assert!(torn.succeeded(), "{:?} {:?}", torn.error, torn.cause);
    let (slots, publications) = run.source_objects().await;
    assert!(
        !slots.contains(&"clonesync_td_pub".to_string()),
        "{slots:?}"
    );
    assert!(
        publications.contains(&"users_all".to_string()),
        "the user's publication was dropped: {publications:?}"
    );
}
