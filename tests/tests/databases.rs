//! Several subscriptions from one clone: every database of a list (and
//! `"all"`), and each database's tables split over apply groups. Real
//! servers, the real setup and teardown state machines under moto's
//! engine, a concurrent write load in every database; every table of every
//! database compared by content after catch-up.

use clonesync::pg::{Endpoint, Lsn};
use clonesync::pipeline::triples::{AllDatabases, DatabaseEntry};
use clonesync::pipeline::{DatabaseSelection, PipelineRecord, Scope, Triple};
use clonesync::workflow::{self, State};
use clonesync_local::runtime::{request_over, RunOutcome};
use clonesync_local::LocalRuntime;
use clonesync_tests::fixture::{connect, DB};
use clonesync_tests::pipeline::{short_waits, slots_and_publications, teardown_with_clone};
use clonesync_tests::{compare_tables, create_schema, tables_in, TestEnv, Workload};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const SCHEMAS: &[&str] = &["public", "Sales Schema"];
const OTHERS: [&str; 2] = ["billing", "Audit Log"];

fn endpoint_of(env: &TestEnv, database: &str) -> Endpoint {
    Endpoint {
        dbname: database.to_string(),
        ..env.source_endpoint()
    }
}

/// The source with the workload schema in `appdb` and in each of `others`
/// (created here).
async fn env_with_databases(others: &[&str]) -> TestEnv {
    let env = TestEnv::start().await;
    let admin = env.source_client().await;
    create_schema(&admin).await;
    for db in others {
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {}",
                clonesync::pg::PgName::new(*db).unwrap().quoted()
            ))
            .await
            .expect("create database");
        create_schema(&connect(&endpoint_of(&env, db)).await).await;
    }
    env
}

async fn runtime(env: &TestEnv) -> LocalRuntime {
    LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("local runtime")
}

async fn run(runtime: &LocalRuntime, name: &str, input: &serde_json::Value) -> RunOutcome {
    let outcome = tokio::time::timeout(
        Duration::from_secs(300),
        runtime.run(name, input, &mut |_| {}),
    )
    .await
    .expect("the execution ended within 5 minutes")
    .expect("run");
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    outcome
}

fn list(names: &[&str]) -> DatabaseSelection {
    DatabaseSelection::List(
        names
            .iter()
            .map(|n| DatabaseEntry::Name(n.to_string()))
            .collect(),
    )
}

/// Wait until every slot named has confirmed the source's WAL position as
/// of now: every subscription has applied all the source wrote.
async fn wait_caught_up(source: &Client, slots: &[String], timeout: Duration) {
    let target = clonesync::pg::wal::current_lsn(source).await.unwrap();
    let started = Instant::now();
    loop {
        let mut behind = Vec::new();
        for slot in slots {
            let info = clonesync::pg::slot::slot_info(source, slot)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("slot {slot} is gone"));
            if info.confirmed_flush_lsn.unwrap_or(Lsn::from(0u64)) < target {
                behind.push(slot.clone());
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "slots still behind {target} after {timeout:?}: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every table of the workload schema in `database`, source against the
/// clone, by content; returns how many were compared.
async fn compare_database(env: &TestEnv, state: &State, database: &str) -> usize {
    let source = connect(&endpoint_of(env, database)).await;
    let clone = connect(&Endpoint {
        dbname: database.to_string(),
        ..env.plane.clone_login(state.clone_info().unwrap())
    })
    .await;
    let tables = tables_in(&source, SCHEMAS).await;
    let (states, differences) = compare_tables(&source, &clone, &tables).await;
    assert!(
        differences.is_empty(),
        "{database}: tables differ: {differences:#?}"
    );
    states.len()
}

async fn apply_errors(env: &TestEnv, state: &State, triple: &Triple) -> (i64, i64) {
    let clone = connect(&Endpoint {
        dbname: triple.database.clone(),
        ..env.plane.clone_login(state.clone_info().unwrap())
    })
    .await;
    let lag = clonesync::pg::lag::subscription_lags(&clone, &[triple.subscription.as_str()]).await;
    let lag = lag.unwrap().into_iter().next().expect("the subscription");
    (
        lag.apply_error_count.unwrap_or(0),
        lag.conflicts_total().unwrap_or(0),
    )
}

/// Nothing named for the pipeline in any database of the source, and no
/// slot at all.
async fn assert_nothing_left(env: &TestEnv, databases: &[&str]) {
    for db in databases {
        let client = connect(&endpoint_of(env, db)).await;
        let (slots, publications) = slots_and_publications(&client).await;
        assert!(slots.is_empty(), "slots left: {slots:?}");
        assert!(
            publications.is_empty(),
            "{db}: publications left: {publications:?}"
        );
    }
    assert_eq!(env.running_servers(), 0, "a clone server still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_databases_under_load_each_equal_then_paused_and_torn_down() {
    let env = env_with_databases(&OTHERS).await;
    let databases = [DB, OTHERS[0], OTHERS[1]];
    let loads: Vec<Workload> = databases
        .iter()
        .enumerate()
        .map(|(i, db)| {
            Workload::start(
                endpoint_of(&env, db),
                2,
                40 + i as u64,
                Duration::from_millis(5),
            )
        })
        .collect();
    for load in &loads {
        load.wait_for_more(50).await;
    }
    let runtime = runtime(&env).await;
    let input = request_over(
        "three_dbs",
        json!({"kind": "all_tables"}),
        &list(&databases),
        1,
        short_waits(),
    );
    let outcome = run(&runtime, "setup-three", &input).await;
    let state = outcome.state().unwrap();
    let triples = state.triples();
    assert_eq!(
        triples
            .iter()
            .map(|t| t.database.as_str())
            .collect::<Vec<_>>(),
        databases,
        "one triple per database, in the order given"
    );
    let slots: Vec<String> = triples.iter().map(|t| t.slot.to_string()).collect();
    assert_eq!(
        slots.iter().collect::<BTreeSet<_>>().len(),
        3,
        "slots are cluster-wide: each is named for its database: {slots:?}"
    );
    assert!(
        slots.contains(&"clonesync_three_dbs__billing".to_string()),
        "{slots:?}"
    );
    let record = runtime
        .registry()
        .get_pipeline(&"three_dbs".parse().unwrap())
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(record.triples, triples, "the registry lists every triple");

    // The monitor reads every triple: three slots owned, three
    // subscriptions applying.
    let report = clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&record)).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let owned: Vec<_> = report
        .slots()
        .filter(|(_, s)| s.pipeline.as_deref() == Some("three_dbs"))
        .collect();
    assert_eq!(owned.len(), 3, "{owned:?}");
    assert_eq!(report.targets.len(), 3, "{:?}", report.targets);
    assert!(
        report.targets.iter().all(|t| t.enabled),
        "{:?}",
        report.targets
    );

    for load in &loads {
        load.wait_for_more(150).await;
    }
    let mut committed = 0;
    for load in loads {
        committed += load.stop().await.committed;
    }
    assert!(committed > 600, "{committed} transactions");
    let source = env.source_client().await;
    wait_caught_up(&source, &slots, Duration::from_secs(90)).await;
    for db in databases {
        assert_eq!(compare_database(&env, &state, db).await, 8, "{db}");
    }
    for triple in &triples {
        assert_eq!(apply_errors(&env, &state, triple).await, (0, 0));
    }

    // Pause and resume reach every subscription.
    let pause = clonesync::handlers::dispatch(
        &*runtime.cloud,
        "pause-pipeline",
        json!({"pipeline_id": "three_dbs"}),
    )
    .await
    .unwrap();
    assert_eq!(pause["phase"], "paused");
    let report = clonesync::monitor::check(
        &*runtime.cloud,
        &[runtime
            .registry()
            .get_pipeline(&"three_dbs".parse().unwrap())
            .await
            .unwrap()
            .unwrap()],
    )
    .await;
    assert!(
        report.targets.iter().all(|t| !t.enabled && t.paused),
        "{:?}",
        report.targets
    );
    source
        .batch_execute("INSERT INTO public.accounts (owner, balance) VALUES ('while paused', 1)")
        .await
        .unwrap();
    clonesync::handlers::dispatch(
        &*runtime.cloud,
        "resume-pipeline",
        json!({"pipeline_id": "three_dbs"}),
    )
    .await
    .unwrap();
    wait_caught_up(&source, &slots, Duration::from_secs(60)).await;
    assert_eq!(compare_database(&env, &state, DB).await, 8);

    teardown_with_clone(&runtime, "three_dbs").await;
    assert_nothing_left(&env, &databases).await;
    assert!(runtime
        .registry()
        .get_pipeline(&"three_dbs".parse().unwrap())
        .await
        .unwrap()
        .is_none());
}

/// The state of a validated request, planned by preflight (the direct
/// steps, without the state machine).
async fn planned(env: &TestEnv, input: serde_json::Value) -> State {
    let mut state = workflow::state::validate(input, clonesync_local::moto::REGION).unwrap();
    state.preflight = Some(workflow::preflight(&env.plane, &state).await.unwrap());
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_preparing_the_second_database_leaves_nothing_in_any() {
    let env = env_with_databases(&OTHERS).await;
    let databases = [DB, OTHERS[0], OTHERS[1]];
    let state = planned(
        &env,
        request_over(
            "fails_second",
            json!({"kind": "all_tables"}),
            &list(&databases),
            1,
            short_waits(),
        ),
    )
    .await;
    let triples = state.triples();
    assert_eq!(triples.len(), 3);
    // After preflight, someone makes a publication of the second triple's
    // name in the second database that publishes something else: its
    // preparation fails with a named conflict.
    let second = connect(&endpoint_of(&env, OTHERS[0])).await;
    second
        .batch_execute(&format!(
            "CREATE PUBLICATION {} FOR TABLE public.accounts",
            triples[1].publication.quoted()
        ))
        .await
        .unwrap();
    let err = workflow::prepare_source(&env.plane, &state)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Source.PublicationConflict", "{err}");
    // The first database's publication and slot are gone again; the
    // user's publication in the second stays; the third was not touched.
    let source = env.source_client().await;
    let (slots, publications) = slots_and_publications(&source).await;
    assert!(slots.is_empty(), "slots left: {slots:?}");
    assert!(publications.is_empty(), "{publications:?}");
    let (_, second_publications) = slots_and_publications(&second).await;
    assert_eq!(second_publications, [triples[1].publication.to_string()]);
    let third = connect(&endpoint_of(&env, OTHERS[1])).await;
    assert!(slots_and_publications(&third).await.1.is_empty());

    // Without the conflict, the same call prepares all three.
    second
        .batch_execute(&format!(
            "DROP PUBLICATION {}",
            triples[1].publication.quoted()
        ))
        .await
        .unwrap();
    let prepared = workflow::prepare_source(&env.plane, &state).await.unwrap();
    assert_eq!(prepared.triples.len(), 3);
    assert_eq!(
        prepared.slot_consistent_lsn,
        prepared
            .triples
            .iter()
            .map(|t| t.consistent_lsn)
            .max()
            .unwrap()
    );
    // A setup run again that fails (the third triple now asks for another
    // table set) leaves the slots it did not make.
    let mut narrowed = state.clone();
    if let Some(report) = narrowed.preflight.as_mut() {
        report.triples[2].scope =
            Scope::tables(vec![
                clonesync::pg::TableName::new("public", "late").unwrap()
            ])
            .unwrap();
    }
    let err = workflow::prepare_source(&env.plane, &narrowed)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Source.PublicationConflict", "{err}");
    let (slots, _) = slots_and_publications(&source).await;
    assert_eq!(
        slots.len(),
        3,
        "slots made by the earlier call stay: {slots:?}"
    );
    let mut undo = state.clone();
    undo.created.source = Some(prepared);
    workflow::cleanup(&env.plane, &undo, &undo.undo_plan())
        .await
        .unwrap();
    assert_nothing_left(&env, &databases).await;
}

/// The tables each group publishes, read from the source's catalog.
async fn published(client: &Client, triple: &Triple) -> BTreeSet<String> {
    client
        .query(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1",
            &[&triple.publication.as_str()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_apply_groups_under_load_equal_and_stable_across_a_rerun() {
    let env = env_with_databases(&[]).await;
    let load = Workload::start(env.source_endpoint(), 3, 77, Duration::from_millis(2));
    load.wait_for_more(100).await;
    let runtime = runtime(&env).await;
    let mut input = runtime.request("grouped", json!({"kind": "all_tables"}), DB, short_waits());
    input["pipeline"]["apply_groups"] = json!(3);
    let outcome = run(&runtime, "setup-grouped", &input).await;
    let state = outcome.state().unwrap();
    let triples = state.triples();
    assert_eq!(triples.len(), 3);
    assert_eq!(
        triples.iter().map(|t| t.slot.as_str()).collect::<Vec<_>>(),
        [
            "clonesync_grouped__g1",
            "clonesync_grouped__g2",
            "clonesync_grouped__g3"
        ]
    );
    // Every table of the scope is in exactly one group (a partitioned
    // table with its partitions).
    let source = env.source_client().await;
    let mut seen = BTreeSet::new();
    let mut listed = 0;
    for triple in &triples {
        let Scope::Tables { tables } = &triple.scope else {
            panic!("a group publishes a table list: {:?}", triple.scope)
        };
        assert!(!tables.is_empty());
        listed += tables.len();
        for t in tables.iter() {
            seen.insert(t.clone());
        }
        let in_catalog = published(&source, triple).await;
        assert!(!in_catalog.is_empty(), "{}", triple.publication);
    }
    assert_eq!(listed, seen.len(), "no table is in two groups");
    assert_eq!(
        seen.len(),
        7,
        "the 7 top-level tables of the schema: {seen:?}"
    );
    let record = runtime
        .registry()
        .get_pipeline(&"grouped".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.triples, triples, "the assignment is in the registry");

    load.wait_for_more(400).await;
    let stats = load.stop().await;
    assert!(stats.committed > 500, "{stats:?}");
    let slots: Vec<String> = triples.iter().map(|t| t.slot.to_string()).collect();
    wait_caught_up(&source, &slots, Duration::from_secs(90)).await;
    assert_eq!(compare_database(&env, &state, DB).await, 8);
    for triple in &triples {
        assert_eq!(
            apply_errors(&env, &state, triple).await,
            (0, 0),
            "{}",
            triple.subscription
        );
    }

    // Tables grow unevenly, then setup runs again on the streaming
    // pipeline: the same assignment, nothing moved, still streaming.
    source
        .batch_execute(
            "INSERT INTO public.events (kind, detail) \
             SELECT 'bulk', jsonb_build_object('n', g) FROM generate_series(1, 20000) g",
        )
        .await
        .unwrap();
    let again = run(&runtime, "setup-grouped-again", &input).await;
    let again_state = again.state().unwrap();
    assert_eq!(again_state.triples(), triples, "a stable assignment");
    let record: PipelineRecord = runtime
        .registry()
        .get_pipeline(&"grouped".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.triples, triples);
    wait_caught_up(&source, &slots, Duration::from_secs(90)).await;
    assert_eq!(compare_database(&env, &state, DB).await, 8);

    // Setup run again with another group count would make a slot after
    // the clone: refused at preflight, before anything is touched.
    let mut other = input.clone();
    other["pipeline"]["apply_groups"] = json!(2);
    let refused = runtime
        .run("setup-grouped-other", &other, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(refused.error.as_deref(), Some("Preflight.Failed"));
    assert!(
        refused
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("reseed"),
        "{:?}",
        refused.cause
    );
    let (now, _) = slots_and_publications(&source).await;
    assert_eq!(now.len(), 3, "the streaming slots stay: {now:?}");
    source
        .batch_execute("INSERT INTO public.accounts (owner, balance) VALUES ('after refusal', 3)")
        .await
        .unwrap();
    wait_caught_up(&source, &slots, Duration::from_secs(60)).await;
    assert_eq!(compare_database(&env, &state, DB).await, 8);

    // Setup run again with the same input that fails late (after it found
    // and reused every slot, subscription and the clone): its cleanup
    // keeps the live pipeline.
    runtime.faults.add(clonesync_local::invoke::Fault {
        function: "verify".into(),
        error_type: "Verify.NotStreaming".into(),
        times: None,
    });
    let failed = runtime
        .run("setup-grouped-fails", &input, &mut |_| {})
        .await
        .unwrap();
    runtime.faults.clear();
    assert_eq!(failed.error.as_deref(), Some("Verify.NotStreaming"));
    assert!(failed.exited_at("Cleanup").is_some(), "cleanup ran");
    let (now, _) = slots_and_publications(&source).await;
    assert_eq!(now.len(), 3, "the live slots stay: {now:?}");
    let record = runtime
        .registry()
        .get_pipeline(&"grouped".parse().unwrap())
        .await
        .unwrap()
        .expect("the record stays");
    assert_eq!(record.phase, clonesync::pipeline::Phase::Streaming);
    source
        .batch_execute(
            "INSERT INTO public.accounts (owner, balance) VALUES ('after a failed re-run', 4)",
        )
        .await
        .unwrap();
    wait_caught_up(&source, &slots, Duration::from_secs(60)).await;
    assert_eq!(compare_database(&env, &state, DB).await, 8);

    teardown_with_clone(&runtime, "grouped").await;
    assert_nothing_left(&env, &[DB]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_twice_over_two_databases_and_two_groups() {
    let env = env_with_databases(&OTHERS[..1]).await;
    let databases = [DB, OTHERS[0]];
    let mut state = planned(
        &env,
        request_over(
            "twice_many",
            json!({"kind": "all_tables"}),
            &list(&databases),
            2,
            short_waits(),
        ),
    )
    .await;
    let again = workflow::preflight(&env.plane, &state).await.unwrap();
    assert_eq!(Some(&again), state.preflight.as_ref(), "preflight twice");
    let triples = state.triples();
    assert_eq!(triples.len(), 4, "2 databases x 2 groups");

    let prepared = workflow::prepare_source(&env.plane, &state).await.unwrap();
    let prepared_again = workflow::prepare_source(&env.plane, &state).await.unwrap();
    assert_eq!(prepared, prepared_again, "same slots, same LSNs");
    let source = env.source_client().await;
    assert_eq!(slots_and_publications(&source).await.0.len(), 4);
    // Preflight after prepare: the pipeline's own objects are no conflict
    // and the assignment is read back from its publications.
    assert_eq!(
        workflow::preflight(&env.plane, &state)
            .await
            .unwrap()
            .triples,
        triples
    );
    state.created.source = Some(prepared);

    let info = workflow::create_clone(&env.plane, &state).await.unwrap();
    assert_eq!(
        workflow::create_clone(&env.plane, &state).await.unwrap(),
        info
    );
    state.created.clone = Some(info.clone());
    state.clone_info = Some(info);
    let range = workflow::clone_lsn(&env.plane, &state).await.unwrap();
    assert_eq!(
        workflow::clone_lsn(&env.plane, &state).await.unwrap(),
        range
    );
    state.clone_lsn = Some(range);
    let cleaned = workflow::clean_inherited(&env.plane, &state).await.unwrap();
    assert!(cleaned.publication_dropped, "{cleaned:?}");
    let cleaned_again = workflow::clean_inherited(&env.plane, &state).await.unwrap();
    assert!(cleaned_again.slots_dropped.is_empty() && !cleaned_again.publication_dropped);
    // Neither database of the clone keeps a publication or a slot of the
    // source's.
    for db in databases {
        let clone = connect(&Endpoint {
            dbname: db.to_string(),
            ..env.plane.clone_login(state.clone_info().unwrap())
        })
        .await;
        let (slots, publications) = slots_and_publications(&clone).await;
        assert!(
            slots.is_empty() && publications.is_empty(),
            "{db}: {slots:?} {publications:?}"
        );
    }
    let subscribed = workflow::create_subscription(&env.plane, &state)
        .await
        .unwrap();
    assert!(subscribed.iter().all(|s| s.created_now));
    let subscribed_again = workflow::create_subscription(&env.plane, &state)
        .await
        .unwrap();
    assert!(subscribed_again.iter().all(|s| !s.created_now));
    assert_eq!(
        subscribed
            .iter()
            .map(|s| s.subscription_oid)
            .collect::<Vec<_>>(),
        subscribed_again
            .iter()
            .map(|s| s.subscription_oid)
            .collect::<Vec<_>>()
    );
    state.created.subscription = Some(subscribed);
    let enabled = workflow::advance_and_enable(&env.plane, &state)
        .await
        .unwrap();
    assert!(enabled.iter().all(|e| e.advanced_now && e.enabled_now));
    let enabled_again = workflow::advance_and_enable(&env.plane, &state)
        .await
        .unwrap();
    assert!(enabled_again
        .iter()
        .all(|e| !e.advanced_now && !e.enabled_now));
    let verified = workflow::verify(&env.plane, &state).await.unwrap();
    assert_eq!(verified.len(), 4);

    // A write in each database reaches the clone through its group.
    for db in databases {
        connect(&endpoint_of(&env, db))
            .await
            .batch_execute("INSERT INTO public.accounts (owner, balance) VALUES ('after', 2)")
            .await
            .unwrap();
    }
    let slots: Vec<String> = triples.iter().map(|t| t.slot.to_string()).collect();
    wait_caught_up(&source, &slots, Duration::from_secs(60)).await;
    for db in databases {
        assert_eq!(compare_database(&env, &state, db).await, 8);
    }

    let plan = state.undo_everything();
    workflow::cleanup(&env.plane, &state, &plan).await.unwrap();
    workflow::cleanup(&env.plane, &state, &plan).await.unwrap();
    assert_nothing_left(&env, &databases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_databases_and_the_named_preflight_failures() {
    let env = env_with_databases(&OTHERS[..1]).await;
    let admin = env.source_client().await;
    admin.batch_execute("CREATE DATABASE closed").await.unwrap();
    admin
        .batch_execute("ALTER DATABASE closed ALLOW_CONNECTIONS false")
        .await
        .unwrap();
    let all = planned(
        &env,
        request_over(
            "every_db",
            json!({"kind": "all_tables"}),
            &DatabaseSelection::All(AllDatabases::All),
            1,
            short_waits(),
        ),
    )
    .await;
    let found: BTreeSet<String> = all.triples().into_iter().map(|t| t.database).collect();
    assert_eq!(
        found,
        [DB, OTHERS[0], "postgres"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "templates and a database without connections are left out"
    );

    // Split into groups, an unlogged table is still named as not
    // replicated (the groups' table lists alone would leave it out).
    admin
        .batch_execute("CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY)")
        .await
        .unwrap();
    let grouped = workflow::state::validate(
        request_over(
            "grouped_unlogged",
            json!({"kind": "all_tables"}),
            &list(&[DB]),
            2,
            short_waits(),
        ),
        clonesync_local::moto::REGION,
    )
    .unwrap();
    let report = workflow::preflight(&env.plane, &grouped).await.unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("unlogged") && w.contains("public.scratch")),
        "{:?}",
        report.warnings
    );

    // A publication of a triple's name marked as another pipeline's.
    admin
        .batch_execute(
            "CREATE PUBLICATION clonesync_marked__appdb FOR TABLE public.accounts; \
             COMMENT ON PUBLICATION clonesync_marked__appdb IS 'clonesync pipeline someone_else'",
        )
        .await
        .unwrap();
    let marked = workflow::state::validate(
        request_over(
            "marked",
            json!({"kind": "tables", "tables": [{"schema": "public", "name": "accounts"}]}),
            &list(&[DB]),
            1,
            short_waits(),
        ),
        clonesync_local::moto::REGION,
    )
    .unwrap();
    let err = workflow::preflight(&env.plane, &marked).await.unwrap_err();
    assert!(err.to_string().contains("another pipeline's"), "{err}");

    // A database that does not exist, one that takes no connections, and
    // more groups than a database has tables: one Preflight.Failed naming
    // each; nothing made.
    let input = request_over(
        "bad_dbs",
        json!({"kind": "tables", "tables": [{"schema": "public", "name": "accounts"}]}),
        &list(&[DB, "nowhere", "closed"]),
        2,
        short_waits(),
    );
    let state = workflow::state::validate(input, clonesync_local::moto::REGION).unwrap();
    let err = workflow::preflight(&env.plane, &state).await.unwrap_err();
    assert_eq!(err.name(), "Preflight.Failed");
    let clonesync::Error::PreflightFailed { failures } = err else {
        unreachable!()
    };
    let details: Vec<&str> = failures.iter().map(|f| f.detail.as_str()).collect();
    for needle in [
        "\"nowhere\" does not exist",
        "\"closed\"",
        "apply_groups is 2",
    ] {
        assert!(
            details.iter().any(|d| d.contains(needle)),
            "{needle} not in {details:?}"
        );
    }
    let (slots, publications) = slots_and_publications(&admin).await;
    assert!(slots.is_empty(), "{slots:?}");
    assert_eq!(
        publications,
        ["clonesync_marked__appdb"],
        "only the other pipeline's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_crash_with_four_triples_streaming_loses_and_repeats_nothing() {
    let mut env = env_with_databases(&OTHERS[..1]).await;
    let databases = [DB, OTHERS[0]];
    let runtime = runtime(&env).await;
    let input = request_over(
        "crash_many",
        json!({"kind": "all_tables"}),
        &list(&databases),
        2,
        short_waits(),
    );
    let loads: Vec<Workload> = databases
        .iter()
        .enumerate()
        .map(|(i, db)| Workload::start(endpoint_of(&env, db), 2, 90 + i as u64, Duration::ZERO))
        .collect();
    let outcome = run(&runtime, "setup-crash", &input).await;
    let state = outcome.state().unwrap();
    let triples = state.triples();
    assert_eq!(triples.len(), 4);
    for load in &loads {
        load.wait_for_more(200).await;
    }
    for load in loads {
        load.stop().await;
    }
    // A last burst, then the source dies (immediate shutdown: no
    // checkpoint, the WAL senders cut mid-stream) and comes back.
    for db in databases {
        connect(&endpoint_of(&env, db))
            .await
            .batch_execute(
                "INSERT INTO public.events (kind, detail) \
                 SELECT 'burst', jsonb_build_object('n', g) FROM generate_series(1, 5000) g",
            )
            .await
            .unwrap();
    }
    env.source.stop_now();
    assert!(!env.source.is_running());
    env.source.start().await.expect("the source starts again");
    // Writes after the restart reach the clone through every triple.
    let loads: Vec<Workload> = databases
        .iter()
        .enumerate()
        .map(|(i, db)| Workload::start(endpoint_of(&env, db), 2, 95 + i as u64, Duration::ZERO))
        .collect();
    for load in &loads {
        load.wait_for_more(200).await;
    }
    for load in loads {
        load.stop().await;
    }
    let source = env.source_client().await;
    let slots: Vec<String> = triples.iter().map(|t| t.slot.to_string()).collect();
    wait_caught_up(&source, &slots, Duration::from_secs(120)).await;
    for db in databases {
        assert_eq!(compare_database(&env, &state, db).await, 8, "{db}");
    }
    for triple in &triples {
        assert_eq!(apply_errors(&env, &state, triple).await.1, 0, "no conflict");
    }
    runtime.teardown(&state).await.unwrap();
    assert_nothing_left(&env, &databases).await;
}

/// With apply groups (schema changes off), a table made on the source
/// after setup is in no group's list. On main before, nothing said so:
/// `status` exit 0, `drift` "same shape", the table never replicated. Now
/// the monitor (so `status`) and drift name it; the refresh does not give
/// it a group while the copy lacks it (its rows would stop that group's
/// apply); once it is made on the copy, the refresh gives it the group
/// with the fewest tables, copies it under load, and it is equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_made_after_setup_with_groups_is_named_until_it_joins_a_group() {
    let env = env_with_databases(&[]).await;
    let runtime = runtime(&env).await;
    let mut input = runtime.request("latejoin", json!({"kind": "all_tables"}), DB, short_waits());
    input["pipeline"]["apply_groups"] = json!(2);
    let outcome = run(&runtime, "setup-latejoin", &input).await;
    let state = outcome.state().unwrap();
    let record: PipelineRecord = runtime
        .registry()
        .get_pipeline(&"latejoin".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let source = env.source_client().await;
    let load = Workload::start(env.source_endpoint(), 2, 59, Duration::from_millis(5));
    let make = "CREATE TABLE public.late_grouped (id int PRIMARY KEY, v text)";
    source.batch_execute(make).await.unwrap();
    source
        .batch_execute(
            "INSERT INTO public.late_grouped SELECT g, 'v' || g FROM generate_series(1, 100) g",
        )
        .await
        .unwrap();
    let not_published = |report: &clonesync::monitor::MonitorReport| -> Vec<String> {
        report
            .targets
            .iter()
            .filter_map(|t| t.tables_not_published.clone())
            .flatten()
            .collect()
    };
    let report = clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&record)).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(not_published(&report), ["\"public\".\"late_grouped\""]);
    let drift = workflow::schema::drift_pipeline(&env.plane, &record)
        .await
        .unwrap();
    assert!(
        drift.databases[0]
            .1
            .iter()
            .any(|d| d.table == "\"public\".\"late_grouped\"" && d.what == "replication"),
        "{drift:?}"
    );
    // The copy lacks it: no group yet (its rows would stop that group).
    workflow::schema::refresh_pipeline(&env.plane, &record)
        .await
        .unwrap();
    let report = clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&record)).await;
    assert_eq!(not_published(&report), ["\"public\".\"late_grouped\""]);

    let clone = connect(&env.plane.clone_login(state.clone_info().unwrap())).await;
    clone.batch_execute(make).await.unwrap();
    let started = Instant::now();
    loop {
        let report = workflow::schema::refresh_pipeline(&env.plane, &record)
            .await
            .unwrap();
        let pending: usize = report
            .triples
            .iter()
            .map(|(_, t)| t.added.len() + t.syncing.len())
            .sum();
        let copied: i64 = clone
            .query_one("SELECT count(*) FROM public.late_grouped", &[])
            .await
            .unwrap()
            .get(0);
        if pending == 0 && copied > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{report:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    source
        .batch_execute("UPDATE public.late_grouped SET v = 'streamed' WHERE id <= 10")
        .await
        .unwrap();
    load.wait_for_more(100).await;
    load.stop().await;
    let slots: Vec<String> = state.triples().iter().map(|t| t.slot.to_string()).collect();
    wait_caught_up(&source, &slots, Duration::from_secs(90)).await;
    assert_eq!(
        compare_database(&env, &state, DB).await,
        9,
        "the 8 tables and the late one"
    );
    let report = clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&record)).await;
    assert!(
        not_published(&report).is_empty(),
        "{:?}",
        not_published(&report)
    );
    let drift = workflow::schema::drift_pipeline(&env.plane, &record)
        .await
        .unwrap();
    assert!(
        drift.databases[0].1.iter().all(|d| d.what != "replication"),
        "{drift:?}"
    );
    runtime.teardown(&state).await.unwrap();
}
