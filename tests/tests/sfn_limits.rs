//! Step Functions' quotas at a real size: 5,000 tables through the setup,
//! verify and teardown state machines, each execution within
//! 256 KiB per state and 25,000 history events. moto enforces neither, so
//! the local runtime does ([`clonesync_local::runtime::PAYLOAD_LIMIT_BYTES`],
//! [`clonesync_local::runtime::HISTORY_LIMIT_EVENTS`]): an execution over
//! either ends `FAILED`, as AWS would end it. Row 15 of
//! `AWS-BEHAVIOURS.md`.

use clonesync::ports::Cloud;
use clonesync::workflow::verify::{self, StoredPlan};
use clonesync_local::runtime::{request, RunOutcome, HISTORY_LIMIT_EVENTS, PAYLOAD_LIMIT_BYTES};
use clonesync_local::LocalRuntime;
use clonesync_tests::fixture::{connect, DB};
use clonesync_tests::pipeline::short_waits;
use clonesync_tests::TestEnv;
use serde_json::json;
use std::time::Duration;

/// Tables in the database, spread over [`SCHEMAS`] schemas.
const TABLES: usize = 5_000;
const SCHEMAS: usize = 10;

fn within_limits(runtime: &LocalRuntime, what: &str, outcome: &RunOutcome) {
    let failed: Vec<_> = runtime
        .faults
        .invocations()
        .into_iter()
        .filter(|i| i.error_type.is_some())
        .take(5)
        .collect();
    assert!(
        outcome.succeeded(),
        "{what}: {} {:?} {:?}; failed invocations: {failed:?}; states exited: {:?}",
        outcome.status,
        outcome.error,
        outcome.cause,
        outcome.exits.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert!(
        outcome.largest_payload <= PAYLOAD_LIMIT_BYTES,
        "{what}: a payload of {} bytes",
        outcome.largest_payload
    );
    assert!(
        outcome.history_events <= HISTORY_LIMIT_EVENTS,
        "{what}: {} history events",
        outcome.history_events
    );
    eprintln!(
        "{what}: {} history events, largest payload {} bytes, {:.1} s",
        outcome.history_events,
        outcome.largest_payload,
        outcome
            .stopped
            .duration_since(outcome.started)
            .unwrap_or_default()
            .as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_tables_set_up_verify_and_tear_down_within_step_functions_quotas() {
    let env = TestEnv::start().await;
    let admin = env.source_client().await;
    // One transaction per schema: 5,000 tables at once would need more
    // locks than max_locks_per_transaction gives one transaction.
    for schema in 1..=SCHEMAS {
        admin
            .batch_execute(&format!(
                "CREATE SCHEMA tenant_{schema};
                 DO $$ BEGIN
                   FOR t IN 1..{per} LOOP
                     EXECUTE format('CREATE TABLE tenant_{schema}.t_%s (id int PRIMARY KEY, v text)', t);
                     EXECUTE format('INSERT INTO tenant_{schema}.t_%s VALUES (1, %L), (2, %L)', t, 'one', 'two');
                   END LOOP;
                 END $$;",
                per = TABLES / SCHEMAS
            ))
            .await
            .unwrap();
    }
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("runtime");
    let id = "wide";
    let setup = runtime
        .run(
            "setup-wide",
            &request(id, json!({"kind": "all_tables"}), DB, short_waits()),
            &mut |_| {},
        )
        .await
        .expect("setup ran");
    within_limits(&runtime, "setup", &setup);
    let state = setup.state().unwrap();
    let target = connect(&env.plane.clone_login(state.clone_info().unwrap())).await;

    // Rows that reach the copy by the stream, and one difference made by
    // hand on the copy that verification must name among 5,000.
    admin
        .batch_execute("INSERT INTO tenant_3.t_7 VALUES (3, 'streamed')")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while target
        .query_opt("SELECT 1 FROM tenant_3.t_7 WHERE id = 3", &[])
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the row never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    target
        .batch_execute(
            "SET session_replication_role = replica; \
             UPDATE tenant_9.t_499 SET v = 'edited on the copy' WHERE id = 2",
        )
        .await
        .unwrap();

    let verified = runtime
        .run_verify("verify-wide", &json!({"pipeline_id": id}), &mut |_| {})
        .await
        .expect("verify ran");
    within_limits(&runtime, "verify", &verified);
    let output = verified.output.clone().unwrap();
    let summary = &output["summary"];
    assert_eq!(summary["tables"], TABLES, "{summary}");
    assert_eq!(summary["equal"], TABLES - 1, "{summary}");
    assert_eq!(summary["differing_total"], 1, "{summary}");
    assert_eq!(
        summary["differing"],
        json!([format!("{DB}: \"tenant_9\".\"t_499\"")])
    );
    // Every table's verdict is in the runs bucket, none in the state.
    let plan: StoredPlan = serde_json::from_value(output["plan"].clone()).unwrap();
    assert_eq!(plan.tables, TABLES);
    let stored = verify::stored_verdicts(&runtime.cloud.runs().unwrap(), &plan)
        .await
        .unwrap();
    assert_eq!(stored.len(), TABLES);
    let edited: Vec<_> = stored.iter().filter(|v| v.differing_total > 0).collect();
    assert_eq!(edited.len(), 1, "{edited:#?}");
    assert_eq!(edited[0].table, "\"tenant_9\".\"t_499\"");

    let torn = runtime
        .run_teardown("teardown-wide", &json!({"pipeline_id": id}), &mut |_| {})
        .await
        .expect("teardown ran");
    within_limits(&runtime, "teardown", &torn);
    let (slots, publications) = clonesync_tests::pipeline::slots_and_publications(&admin).await;
    assert!(
        slots.is_empty() && publications.is_empty(),
        "teardown left {slots:?} {publications:?}"
    );
}

/// The quotas themselves, as Step Functions applies them: a state whose
/// output is 300 KiB is over 256 KiB (moto's engine refuses that result
/// itself); an inline Map over 6,500 items writes four events per item
/// into the one history, over 25,000, which moto runs to the end and the
/// local runtime fails. Under both, the same shapes pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_execution_over_either_quota_fails() {
    let env = TestEnv::start().await;
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("runtime");
    let big_output = |bytes: usize| {
        json!({
            "StartAt": "Big",
            "States": {"Big": {"Type": "Pass", "Result": {"text": "x".repeat(bytes)}, "End": true}}
        })
        .to_string()
    };
    let small = runtime
        .run_definition("state-small", &big_output(200 * 1024), &json!({}))
        .await
        .unwrap();
    assert!(small.succeeded(), "{:?} {:?}", small.error, small.cause);
    let large = runtime
        .run_definition("state-large", &big_output(300 * 1024), &json!({}))
        .await
        .unwrap();
    assert!(!large.succeeded());
    assert_eq!(large.error.as_deref(), Some("States.DataLimitExceeded"));

    let inline_map = json!({
        "StartAt": "Each",
        "States": {"Each": {
            "Type": "Map", "ItemsPath": "$.items", "ResultPath": null,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "One",
                "States": {"One": {"Type": "Pass", "End": true}}},
            "End": true}}
    })
    .to_string();
    let items = |n: usize| json!({"items": vec![0; n]});
    let under = runtime
        .run_definition("map-under", &inline_map, &items(100))
        .await
        .unwrap();
    assert!(under.succeeded(), "{:?} {:?}", under.error, under.cause);
    let over = runtime
        .run_definition("map-over", &inline_map, &items(6_500))
        .await
        .unwrap();
    assert!(!over.succeeded(), "{} events", over.history_events);
    assert!(over.history_events > HISTORY_LIMIT_EVENTS);
    assert_eq!(over.error.as_deref(), Some("Local.HistoryQuotaExceeded"));
}
