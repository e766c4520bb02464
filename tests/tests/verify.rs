//! Trust the copy: verification by content while writes go on, sequences
//! moved ahead for a switchover, and the switchover itself. Real servers,
//! the real setup, verify and switchover state machines under moto's
//! engine, the demo's write load on every table from before the first
//! verification until the switchover.

use clonesync::pg::{Endpoint, TableName};
use clonesync::pipeline::PipelineRecord;
use clonesync::ports::Cloud;
use clonesync::steps::verify_table::{RowState, TableVerdict, Verdict, VerifyOptions};
use clonesync::workflow::verify::{self, VerifyRequest};
use clonesync::workflow::{lifecycle, switchover, State};
use clonesync_local::runtime::{request, RunOutcome};
use clonesync_local::LocalRuntime;
use clonesync_tests::fixture::{connect, DB};
use clonesync_tests::pipeline::short_waits;
use clonesync_tests::{compare_tables, create_schema, tables_in, TestEnv, Workload};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::Client;

/// A table only this test writes: the load inserts and updates rows past
/// id 5000, the hand edits on the target touch rows below it.
const LEDGER: &str = "
    CREATE TABLE public.ledger (id bigint PRIMARY KEY, amount numeric(12,2), note text, at timestamptz);
    INSERT INTO public.ledger SELECT g, g / 3.0, 'seed ' || g, '2026-01-01'::timestamptz + g * interval '1 min'
        FROM generate_series(1, 5000) g;
    CREATE SCHEMA elsewhere;
    CREATE TABLE elsewhere.kept_out (id int PRIMARY KEY);
    CREATE TABLE public.serials (id serial PRIMARY KEY, v text);
    INSERT INTO public.serials (v) SELECT 'x' FROM generate_series(1, 30);
";

fn table(schema: &str, name: &str) -> TableName {
    TableName::new(schema, name).unwrap()
}

/// Inserts and updates on the ledger past id 5000 until stopped.
fn ledger_load(endpoint: Endpoint, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let client = connect(&endpoint).await;
        let mut n: u64 = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            client
                .batch_execute(&format!(
                    "INSERT INTO public.ledger VALUES ({id}, 1, 'load', now()); \
                     UPDATE public.ledger SET amount = amount + 1 WHERE id = {old};",
                    id = 5000 + n,
                    old = 5000 + n / 2 + 1
                ))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        n
    })
}

fn assert_succeeded(outcome: &RunOutcome) {
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
}

async fn setup(runtime: &LocalRuntime, id: &str) -> State {
    let scope = json!({"kind": "schemas", "schemas": ["public", "Sales Schema"]});
    let outcome: RunOutcome = runtime
        .run(
            &format!("setup-{id}"),
            &request(id, scope, DB, short_waits()),
            &mut |_| {},
        )
        .await
        .expect("setup ran");
    assert_succeeded(&outcome);
    outcome.state().expect("a state")
}

async fn record_of(runtime: &LocalRuntime, id: &str) -> PipelineRecord {
    runtime
        .registry()
        .get_pipeline(&id.parse().unwrap())
        .await
        .unwrap()
        .expect("registered")
}

fn by_table<'v>(verdicts: &'v [TableVerdict], name: &str) -> &'v TableVerdict {
    verdicts
        .iter()
        .find(|v| v.table == name)
        .unwrap_or_else(|| panic!("no verdict for {name}: {verdicts:#?}"))
}

async fn verify_all(
    env: &TestEnv,
    record: &PipelineRecord,
    tables: Option<Vec<TableName>>,
) -> Vec<TableVerdict> {
    let request = VerifyRequest {
        pipeline_id: record.pipeline.id.clone(),
        tables,
        options: VerifyOptions {
            // Small ranges, so the tables span several and bisection runs.
            chunk_rows: 500,
            ..VerifyOptions::default()
        },
    };
    verify::verify_pipeline(&env.plane, record, &request)
        .await
        .expect("verify")
}

async fn apply_worker_pid(target: &Client) -> Option<i32> {
    target
        .query_opt(
            "SELECT pid FROM pg_stat_subscription WHERE relid IS NULL AND pid IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

/// Sequences in scope on `client` and their next value.
async fn sequences(client: &Client) -> Vec<(String, i64)> {
    client
        .query(
            "SELECT schemaname || '.' || sequencename, \
                    coalesce(last_value + increment_by, start_value) \
             FROM pg_sequences WHERE schemaname IN ('public', 'Sales Schema') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_names_hand_made_differences_under_load_and_the_switchover_needs_an_equal_copy() {
    let env = TestEnv::start().await;
    let admin = env.source_client().await;
    create_schema(&admin).await;
    admin.batch_execute(LEDGER).await.unwrap();
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("runtime");
    let id = "verify_p";
    let state = setup(&runtime, id).await;
    let record = record_of(&runtime, id).await;
    let target = connect(&env.plane.clone_login(state.clone_info().unwrap())).await;

    let workload = Workload::start(env.source_endpoint(), 2, 16, Duration::from_millis(10));
    let stop_ledger = Arc::new(AtomicBool::new(false));
    let ledger = ledger_load(env.source_endpoint(), stop_ledger.clone());
    workload.wait_for_more(100).await;

    // No false positive: ten runs over an unaltered copy under the load;
    // during one, the apply worker is killed (it restarts, the re-checks
    // wait for it).
    let mut tables = 0;
    for run in 0..10 {
        let killer = (run == 4).then(|| {
            let login = env.plane.clone_login(state.clone_info().unwrap());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let target = connect(&login).await;
                if let Some(pid) = apply_worker_pid(&target).await {
                    target
                        .execute("SELECT pg_terminate_backend($1)", &[&pid])
                        .await
                        .unwrap();
                }
            })
        });
        let verdicts = verify_all(&env, &record, None).await;
        if let Some(killer) = killer {
            killer.await.unwrap();
        }
        tables = verdicts.len();
        for v in &verdicts {
            assert_ne!(
                v.verdict,
                Verdict::Differs,
                "run {run}: a false positive: {v:#?}"
            );
            if !v.key.is_empty() {
                assert_eq!(v.verdict, Verdict::Equal, "run {run}: {v:#?}");
            }
        }
        let events = by_table(&verdicts, "\"public\".\"events\"");
        assert!(events.key.is_empty(), "events has no key: compared whole");
    }
    assert!(tables >= 8, "only {tables} tables verified");
    assert!(
        by_table(
            &verify_all(&env, &record, None).await,
            "\"public\".\"ledger\""
        )
        .chunks
            >= 10,
        "the ledger spans several ranges"
    );

    // By hand on the target: a row changed, one deleted, one added.
    target
        .batch_execute(
            "UPDATE public.ledger SET note = 'by hand' WHERE id = 100; \
             DELETE FROM public.ledger WHERE id = 2000; \
             INSERT INTO public.ledger VALUES (-5, 0, 'only on the target', now());",
        )
        .await
        .unwrap();
    let verdicts = verify_all(&env, &record, None).await;
    let ledger_verdict = by_table(&verdicts, "\"public\".\"ledger\"");
    assert_eq!(
        ledger_verdict.verdict,
        Verdict::Differs,
        "{ledger_verdict:#?}"
    );
    let mut found: Vec<(Vec<String>, RowState)> = ledger_verdict
        .differing_rows
        .iter()
        .map(|r| (r.key.clone(), r.state))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (vec!["-5".to_string()], RowState::ExtraOnTarget),
            (vec!["100".to_string()], RowState::Changed),
            (vec!["2000".to_string()], RowState::MissingOnTarget),
        ]
    );
    assert_eq!(ledger_verdict.differing_total, 3);
    for v in verdicts
        .iter()
        .filter(|v| !v.key.is_empty() && v.table != ledger_verdict.table)
    {
        assert_eq!(v.verdict, Verdict::Equal, "{v:#?}");
    }

    // The verify state machine (a Map over the tables) says the same.
    let outcome = runtime
        .run_verify(
            "verify-ledger",
            &json!({"pipeline_id": id, "tables": [{"schema": "public", "name": "ledger"}], "options": {"chunk_rows": 500}}),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_succeeded(&outcome);
    let output = outcome.output.unwrap();
    assert_eq!(output["summary"]["all_equal"], false);
    assert_eq!(
        output["summary"]["differing"],
        json!([format!("{DB}: \"public\".\"ledger\"")])
    );
    assert_eq!(output["summary"]["differing_total"], 1);
    // The whole verdict, with its rows, is in the runs bucket.
    let plan: verify::StoredPlan = serde_json::from_value(output["plan"].clone()).unwrap();
    let runs = runtime.cloud.runs().unwrap();
    let stored = verify::stored_verdicts(&runs, &plan).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0].differing_total, 3);

    // Bad input: named, and nothing changes.
    let ask = |tables: Vec<TableName>| VerifyRequest {
        pipeline_id: id.parse().unwrap(),
        tables: Some(tables),
        options: VerifyOptions::default(),
    };
    let err = verify::plan(runtime.cloud.as_ref(), &ask(vec![table("public", "nope")]))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Verify.TableUnknown", "{err}");
    let err = verify::plan(
        runtime.cloud.as_ref(),
        &ask(vec![table("elsewhere", "kept_out")]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Verify.TableOutOfScope", "{err}");
    let err = verify::plan(
        runtime.cloud.as_ref(),
        &VerifyRequest {
            pipeline_id: "no_such".parse().unwrap(),
            tables: None,
            options: VerifyOptions::default(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Pipeline.Unknown");
    let err = verify::plan(
        runtime.cloud.as_ref(),
        &VerifyRequest {
            pipeline_id: id.parse().unwrap(),
            tables: None,
            options: VerifyOptions {
                connections: 99,
                ..VerifyOptions::default()
            },
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Input.Invalid");
    let pipeline = lifecycle::PauseInput {
        pipeline_id: id.parse().unwrap(),
    };
    lifecycle::set_paused(runtime.cloud.as_ref(), &pipeline, lifecycle::Pausing::Pause)
        .await
        .unwrap();
    let err = verify::plan(
        runtime.cloud.as_ref(),
        &ask(vec![table("public", "ledger")]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Verify.NotStreaming", "{err}");
    lifecycle::set_paused(
        runtime.cloud.as_ref(),
        &pipeline,
        lifecycle::Pausing::Resume,
    )
    .await
    .unwrap();

    // A switchover while the source is written to stops at the quiet check.
    let outcome = runtime
        .run_switchover(
            "switchover-busy",
            &json!({"pipeline_id": id, "quiet_seconds": 1}),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.error.as_deref(),
        Some("Switchover.SourceWriting"),
        "{:?}",
        outcome.cause
    );

    stop_ledger.store(true, Ordering::SeqCst);
    let ledger_rows = ledger.await.unwrap();
    let stats = workload.stop().await;
    assert!(
        ledger_rows > 20 && stats.committed > 100,
        "the loads ran: {ledger_rows}, {stats:?}"
    );

    // Sequences: behind the source before, ahead after; twice = once.
    let report =
        clonesync::monitor::check(runtime.cloud.as_ref(), std::slice::from_ref(&record)).await;
    let headroom = report.targets[0]
        .smallest_sequence_headroom
        .clone()
        .expect("a headroom");
    assert!(
        headroom.1 <= 0,
        "the clone's sequences stayed behind: {headroom:?}"
    );
    let synced = switchover::sequences(
        runtime.cloud.as_ref(),
        &switchover::SequencesRequest {
            pipeline_id: id.parse().unwrap(),
            headroom: Default::default(),
        },
    )
    .await
    .unwrap();
    assert!(synced.moved() >= 5, "{synced:#?}");
    assert!(synced.missing_on_target().is_empty());
    let again = switchover::sequences(
        runtime.cloud.as_ref(),
        &switchover::SequencesRequest {
            pipeline_id: id.parse().unwrap(),
            headroom: Default::default(),
        },
    )
    .await
    .unwrap();
    assert_eq!(again.moved(), 0, "{again:#?}");
    let report =
        clonesync::monitor::check(runtime.cloud.as_ref(), std::slice::from_ref(&record)).await;
    let headroom = report.targets[0]
        .smallest_sequence_headroom
        .clone()
        .expect("a headroom");
    assert!(headroom.1 >= 999_000, "{headroom:?}");

    // The table without a key: a row added by hand is found.
    target
        .execute("INSERT INTO public.events (kind) VALUES ('by hand')", &[])
        .await
        .unwrap();
    let events = verify_all(&env, &record, Some(vec![table("public", "events")])).await;
    assert_eq!(events[0].verdict, Verdict::Differs, "{events:#?}");

    // The switchover refuses a copy that differs, and leaves it streaming.
    let outcome = runtime
        .run_switchover(
            "switchover-differs",
            &json!({"pipeline_id": id, "source_stopped": true}),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.error.as_deref(),
        Some("Verify.Differs"),
        "{:?}",
        outcome.cause
    );
    let enabled: bool = target
        .query_one("SELECT subenabled FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        enabled,
        "a refused switchover leaves the subscription applying"
    );

    // Repair by hand from the source; then the copy is equal again.
    target
        .batch_execute(
            "DELETE FROM public.events WHERE kind = 'by hand'; \
             DELETE FROM public.ledger WHERE id IN (-5, 100);",
        )
        .await
        .unwrap();
    for row in admin
        .query(
            "SELECT id, amount::text, note, at::text FROM public.ledger WHERE id IN (100, 2000)",
            &[],
        )
        .await
        .unwrap()
    {
        let (key, amount, note, at): (i64, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        target
            .execute(
                "INSERT INTO public.ledger VALUES ($1, $2::text::numeric, $3, $4::text::timestamptz)",
                &[&key, &amount, &note, &at],
            )
            .await
            .unwrap();
    }
    for v in verify_all(&env, &record, None).await {
        assert_eq!(v.verdict, Verdict::Equal, "{v:#?}");
    }
    // The demo's whole-table comparison agrees, now that nothing writes.
    clonesync_local::compare::wait_for_marker(&admin, &target, Duration::from_secs(60))
        .await
        .unwrap();
    let in_scope = tables_in(&admin, &["public", "Sales Schema"]).await;
    let (states, differences) = compare_tables(&admin, &target, &in_scope).await;
    assert!(differences.is_empty(), "{differences:#?}");
    assert!(states.len() >= 8);

    // The switchover: quiet source, zero lag, sequences, verification,
    // subscription disabled, slot and publication dropped. A table's
    // verification and the finish each fail once on the way (a dropped
    // connection): the state machine retries them.
    for function in ["verify-table", "switchover-finish"] {
        runtime.faults.add(clonesync_local::invoke::Fault {
            function: function.into(),
            error_type: "Transient.Database".into(),
            times: Some(1),
        });
    }
    // Writes to a table out of scope go on through the quiet period: they
    // never reach the copy, so they do not stop the switchover.
    let elsewhere = {
        let endpoint = env.source_endpoint();
        tokio::spawn(async move {
            let client = connect(&endpoint).await;
            for i in 0..40 {
                client
                    .execute("INSERT INTO elsewhere.kept_out VALUES ($1)", &[&i])
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let outcome = runtime
        .run_switchover(
            "switchover",
            &json!({"pipeline_id": id, "quiet_seconds": 2, "drop_source_objects": true}),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_succeeded(&outcome);
    elsewhere.await.unwrap();
    let output = outcome.output.unwrap();
    assert_eq!(output["summary"]["all_equal"], true);
    assert_eq!(output["finished"]["deregistered"], true);
    for function in ["verify-table", "switchover-finish"] {
        let failed = runtime
            .faults
            .invocations()
            .iter()
            .filter(|i| i.function == function && i.injected)
            .count();
        assert_eq!(failed, 1, "{function} failed once and was retried");
    }
    // Finishing again is finishing once.
    let finished: switchover::Switchover = serde_json::from_value(output.clone()).unwrap();
    let again = switchover::finish(runtime.cloud.as_ref(), &finished)
        .await
        .unwrap();
    assert!(again.deregistered && again.dropped.is_none(), "{again:?}");
    let subscriptions: i64 = target
        .query_one("SELECT count(*) FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(subscriptions, 0, "a standalone database");
    let slots: i64 = admin
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0, "the source's slot is gone");

    // Every sequence and identity column on the target now hands out
    // values the source never used.
    let on_source = sequences(&admin).await;
    let on_target = sequences(&target).await;
    assert_eq!(on_source.len(), on_target.len());
    assert!(on_source.len() >= 6, "{on_source:?}");
    for ((name, source_next), (_, target_next)) in on_source.iter().zip(&on_target) {
        assert!(
            target_next > source_next,
            "{name}: target {target_next} <= source {source_next}"
        );
    }
    for (table_name, insert) in [
        ("public.accounts", "INSERT INTO public.accounts (owner, balance) VALUES ('after', 0) RETURNING id"),
        (
            "public.documents",
            "INSERT INTO public.documents (title, body, payload) VALUES ('t', 'b', '\\x00') RETURNING id",
        ),
        ("public.serials", "INSERT INTO public.serials (v) VALUES ('after') RETURNING id::bigint"),
    ] {
        let inserted: i64 = target.query_one(insert, &[]).await.unwrap().get(0);
        let used: i64 = admin
            .query_one(&format!("SELECT coalesce(max(id), 0)::bigint FROM {table_name}"), &[])
            .await
            .unwrap()
            .get(0);
        assert!(inserted > used, "{table_name}: {inserted} <= {used}");
    }
    let (_, publications) = clonesync_tests::pipeline::slots_and_publications(&admin).await;
    assert!(publications.is_empty(), "{publications:?}");
}

/// The hash of a key range and the reads the switchover relies on, on one
/// server: each pair of tables differs in one way a weak hash misses (or
/// is equal in a way a strict one must accept).
#[tokio::test]
async fn the_range_hash_tells_apart_what_differs_and_the_positions_read_true() {
    use clonesync::pg::checksum::{self, KeyRange};
    let server = clonesync_tests::fixture::TestServer::start().await;
    let client = server.client().await;
    checksum::prepare(&client).await.unwrap();
    // A non-deterministic collation needs ICU, which some builds lack
    // (the PyPI builds of 16-18).
    let icu = client
        .batch_execute(
            "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
        )
        .await
        .is_ok();
    let mut cases = vec![
        // Values swapped between rows (a sum of linear row hashes cancels).
        (
            "swap",
            "id int PRIMARY KEY, v text",
            "(1, 'a'), (2, 'b')",
            "(1, 'b'), (2, 'a')",
            false,
        ),
        // NULL, {} and [] in jsonb (jsonb's own hash makes them collide).
        (
            "json",
            "id int PRIMARY KEY, j jsonb",
            "(1, NULL), (2, '[]')",
            "(1, '{}'), (2, '{}')",
            false,
        ),
        (
            "nesting",
            "id int PRIMARY KEY, j jsonb",
            "(1, '[1]')",
            "(1, '[[[1]]]')",
            false,
        ),
        // numeric scale is content.
        (
            "scale",
            "id int PRIMARY KEY, n numeric",
            "(1, 1.0)",
            "(1, 1.00)",
            false,
        ),
        // A NULL against an empty string, and a NULL moved to the next column.
        (
            "null",
            "id int PRIMARY KEY, a text, b text",
            "(1, NULL, 'x')",
            "(1, '', 'x')",
            false,
        ),
        (
            "shift",
            "id int PRIMARY KEY, a text, b text",
            "(1, NULL, 'x')",
            "(1, 'x', NULL)",
            false,
        ),
        // Two equal rows without a key are not one row, nor none.
        (
            "dupes",
            "a int, b text",
            "(1, 'x'), (1, 'x'), (2, 'y')",
            "(2, 'y'), (1, 'x')",
            false,
        ),
        // The same rows, inserted in another order: equal.
        (
            "order",
            "id int PRIMARY KEY, v float8, t timestamptz",
            "(1, 0.1, '2026-01-01 00:00+02'), (2, 1e300, NULL)",
            "(2, 1e300, NULL), (1, 0.1, '2025-12-31 22:00Z')",
            true,
        ),
    ];
    if icu {
        cases.push((
            "case",
            "id int PRIMARY KEY, v text COLLATE ci",
            "(1, 'Hello')",
            "(1, 'HELLO')",
            false,
        ));
    }
    for (name, columns, left, right, equal) in cases {
        client
            .batch_execute(&format!(
                "CREATE TABLE l_{name} ({columns}); CREATE TABLE r_{name} ({columns}); \
                 INSERT INTO l_{name} VALUES {left}; INSERT INTO r_{name} VALUES {right};"
            ))
            .await
            .unwrap();
        let l = checksum::layout(&client, &table("public", &format!("l_{name}")))
            .await
            .unwrap()
            .unwrap();
        let r = checksum::TableLayout {
            table: table("public", &format!("r_{name}")),
            ..l.clone()
        };
        let whole = KeyRange::default();
        let (a, b) = (
            checksum::hash_range(&client, &l, &whole).await.unwrap(),
            checksum::hash_range(&client, &r, &whole).await.unwrap(),
        );
        assert_eq!(a == b, equal, "{name}: {a:?} against {b:?}");
    }

    // Sequences: a restarted one, one set as not called, one at its limit,
    // a descending one: each read at the value its next nextval returns.
    client
        .batch_execute(
            "CREATE SEQUENCE s_restarted; SELECT nextval('s_restarted'); ALTER SEQUENCE s_restarted RESTART WITH 5000000; \
             CREATE SEQUENCE s_uncalled; SELECT setval('s_uncalled', 77, false); \
             CREATE SEQUENCE s_max MAXVALUE 10; SELECT setval('s_max', 10); \
             CREATE SEQUENCE s_down INCREMENT -2 MINVALUE -100 MAXVALUE -1 START -1; SELECT nextval('s_down');",
        )
        .await
        .unwrap();
    let names: Vec<TableName> = ["s_restarted", "s_uncalled", "s_max", "s_down"]
        .iter()
        .map(|n| table("public", n))
        .collect();
    let positions = clonesync::pg::sequences::positions(&client, &names)
        .await
        .unwrap();
    let next = |n: &str| {
        positions
            .iter()
            .find(|p| p.sequence.name.as_str() == n)
            .map(|p| p.next)
            .unwrap_or_else(|| panic!("{n}: {positions:?}"))
    };
    assert_eq!(next("s_restarted"), 5_000_000);
    assert_eq!(next("s_uncalled"), 77);
    assert_eq!(next("s_max"), 10, "at its limit");
    assert_eq!(next("s_down"), -3);
    for (n, want) in [
        ("s_restarted", 5_000_000),
        ("s_uncalled", 77),
        ("s_down", -3),
    ] {
        let got: i64 = client
            .query_one(&format!("SELECT nextval('{n}')"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, want, "{n}: what nextval hands out");
    }

    // The quiet check's reading: a transaction that wrote and is still
    // open counts, however the xid horizon stands.
    let before = clonesync::pg::wal::write_position(&client).await.unwrap();
    assert_eq!(before.open_writers, 0);
    let writer = server.client().await;
    writer
        .batch_execute("BEGIN; INSERT INTO l_swap VALUES (3, 'c');")
        .await
        .unwrap();
    let during = clonesync::pg::wal::write_position(&client).await.unwrap();
    assert_eq!(during.open_writers, 1);
    writer.batch_execute("COMMIT").await.unwrap();
    let after = clonesync::pg::wal::write_position(&client).await.unwrap();
    assert_eq!(after.open_writers, 0);
    assert!(after.lsn > before.lsn, "the write is in the WAL");
}
