//! The lag monitor against real servers: a stalled subscription shows as
//! growing lag and retained WAL on an inactive slot, and recovers; a slot
//! nobody registered is reported as not owned; an unreachable source costs
//! only its own pipeline's figures, and so does a damaged registry record;
//! every output line is Embedded Metric
//! Format by the specification, and none holds a password or a connection
//! string.

use aws_sdk_dynamodb::types::AttributeValue;
use clonesync::aws::registry::Registry;
use clonesync::monitor::{self, MonitorReport, Side};
use clonesync::pipeline::CloneInfo;
use clonesync::pipeline::PipelineRecord;
use clonesync::pipeline::PipelineSpec;
use clonesync::pipeline::Scope;
use clonesync::pipeline::Waits;
use clonesync::pipeline::{CloneSettings, SourceCluster};
use clonesync_local::LocalRuntime;
use clonesync_tests::capture::Captured;
use clonesync_tests::fixture::{connect, DB};
use clonesync_tests::moto::{context, Moto, TABLE};
use clonesync_tests::{create_schema, TestEnv, TestServer, Workload};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Check one line against the Embedded Metric Format specification; return
/// the document.
fn assert_emf(line: &str) -> Value {
    assert!(line.len() < 256 * 1024, "a log event is at most 256 KB");
    assert!(!line.contains('\n'), "one document per line");
    let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let root = doc.as_object().expect("the root is an object");
    let aws = root["_aws"].as_object().expect("_aws metadata");
    assert!(
        aws["Timestamp"].as_u64().is_some(),
        "Timestamp in ms: {line}"
    );
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert!(!directives.is_empty());
    for directive in directives {
        let directive = directive.as_object().unwrap();
        let keys: BTreeSet<&str> = directive.keys().map(String::as_str).collect();
        assert!(
            keys.is_subset(&BTreeSet::from(["Namespace", "Dimensions", "Metrics"])),
            "{line}"
        );
        assert_eq!(directive["Namespace"], "clonesync");
        for set in directive["Dimensions"].as_array().unwrap() {
            let set = set.as_array().unwrap();
            assert!(!set.is_empty() && set.len() <= 30, "{line}");
            for key in set {
                let key = key.as_str().unwrap();
                assert!(
                    root[key].is_string(),
                    "dimension {key} is a string member: {line}"
                );
            }
        }
        let metrics = directive["Metrics"].as_array().unwrap();
        assert!(!metrics.is_empty() && metrics.len() <= 100, "{line}");
        for m in metrics {
            let m = m.as_object().unwrap();
            assert!(m
                .keys()
                .all(|k| ["Name", "Unit", "StorageResolution"].contains(&k.as_str())));
            let name = m["Name"].as_str().unwrap();
            assert!(!name.is_empty() && name.len() <= 255);
            assert!(UNITS.contains(&m["Unit"].as_str().unwrap()), "{line}");
            assert!(
                root[name].is_number(),
                "metric {name} is a number member: {line}"
            );
        }
    }
    doc
}

/// The document carrying `metric` for these dimension values.
fn find<'a>(docs: &'a [Value], dims: &[(&str, &str)], metric: &str) -> Option<&'a Value> {
    docs.iter().find(|d| {
        dims.iter().all(|(k, v)| d[*k] == *v) && d.get(metric).is_some_and(Value::is_number)
    })
}

fn number(doc: Option<&Value>, metric: &str) -> f64 {
    doc.and_then(|d| d[metric].as_f64())
        .unwrap_or_else(|| panic!("no {metric}"))
}

async fn read(runtime: &LocalRuntime) -> (MonitorReport, Vec<Value>) {
    let (report, lines) = monitor::run(&*runtime.cloud, 1_795_000_000_000)
        .await
        .unwrap();
    let docs = lines.iter().map(|l| assert_emf(l)).collect();
    (report, docs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_subscription_shows_growing_lag_then_recovers_and_foreign_slots_are_named() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .unwrap();
    let input = runtime.request("mon", json!({"kind": "all_tables"}), DB, Waits::default());
    let outcome = runtime.run("mon", &input, &mut |_| {}).await.unwrap();
    assert!(outcome.succeeded(), "{:?}", outcome.cause);
    let state = outcome.state().unwrap();
    // A slot nobody registered: the usual forgotten one.
    source
        .execute(
            "SELECT pg_create_logical_replication_slot('forgotten', 'pgoutput')",
            &[],
        )
        .await
        .unwrap();

    let (report, docs) = read(&runtime).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        report.connections, 3,
        "one per source server, one per target database, one per source database (sequences)"
    );
    let ours = [("Pipeline", "mon"), ("Slot", "clonesync_mon")];
    assert_eq!(number(find(&docs, &ours, "SlotActive"), "SlotActive"), 1.0);
    let foreign = find(&docs, &[("Slot", "forgotten")], "SlotActive").expect("the foreign slot");
    assert_eq!(foreign["Owned"], false);
    assert_eq!(foreign["Source"], "local-source");
    assert!(foreign.get("Pipeline").is_none());
    assert_eq!(foreign["SlotActive"], 0.0);
    let summary = find(&docs, &[("Service", "clonesync")], "UnownedSlots");
    assert_eq!(number(summary, "UnownedSlots"), 1.0);
    assert_eq!(number(summary, "InactiveSlots"), 1.0);
    assert_eq!(number(summary, "PipelinesChecked"), 1.0);
    assert_eq!(number(summary, "MonitorErrors"), 0.0);

    // Stall the subscriber; write on the source.
    let target = connect(
        &runtime
            .cloud
            .control_plane()
            .clone_login(state.clone_info().unwrap()),
    )
    .await;
    target
        .batch_execute("ALTER SUBSCRIPTION clonesync_mon DISABLE")
        .await
        .unwrap();
    let stalled = wait_for(&runtime, "the slot to go inactive", |r| {
        r.slots()
            .any(|(_, s)| s.slot == "clonesync_mon" && !s.active)
    })
    .await;
    let before = slot(&stalled, "clonesync_mon");
    let load = Workload::start(env.source_endpoint(), 2, 5, Duration::ZERO);
    load.wait_for_more(300).await;
    load.stop().await;
    let (report, docs) = read(&runtime).await;
    let after = slot(&report, "clonesync_mon");
    assert!(!after.active);
    assert!(
        after.lag_bytes.unwrap() > before.lag_bytes.unwrap() + 100_000,
        "{before:?} {after:?}"
    );
    assert!(after.retained_bytes.unwrap() > before.retained_bytes.unwrap() + 100_000);
    assert_eq!(after.wal_status.as_deref(), Some("reserved"));
    let pipeline = find(&docs, &[("Pipeline", "mon")], "ApplyWorkerRunning");
    assert_eq!(number(pipeline, "ApplyWorkerRunning"), 0.0);
    assert_eq!(number(pipeline, "SubscriptionEnabled"), 0.0);
    let metric_lag = number(find(&docs, &ours, "SlotLagBytes"), "SlotLagBytes");
    assert_eq!(metric_lag, after.lag_bytes.unwrap() as f64);
    let summary = find(&docs, &[("Service", "clonesync")], "MaxLagBytes");
    assert_eq!(number(summary, "MaxLagBytes"), metric_lag);
    assert_eq!(number(summary, "InactiveSlots"), 2.0);

    // Enable again: the lag returns to zero, the worker runs.
    target
        .batch_execute("ALTER SUBSCRIPTION clonesync_mon ENABLE")
        .await
        .unwrap();
    let recovered = wait_for(&runtime, "the lag to return to zero", |r| {
        let s = slot(r, "clonesync_mon");
        s.active && s.lag_bytes == Some(0) && r.targets.iter().all(|t| t.apply_worker)
    })
    .await;
    let t = &recovered.targets[0];
    assert!(t.enabled && t.apply_worker);
    assert!(t.seconds_since_last_message.unwrap() >= 0.0);
    assert!(t.apply_lag_seconds.is_some());
    runtime.teardown(&state).await.unwrap();
}

fn slot(report: &MonitorReport, name: &str) -> clonesync::monitor::SlotReading {
    report
        .slots()
        .find(|(_, s)| s.slot == name)
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| panic!("no slot {name}: {report:?}"))
}

async fn wait_for(
    runtime: &LocalRuntime,
    what: &str,
    done: impl Fn(&MonitorReport) -> bool,
) -> MonitorReport {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (report, _) = read(runtime).await;
        if done(&report) {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "waited a minute for {what}: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn record(id: &str, secret_arn: &str, host: &str, port: u16) -> PipelineRecord {
    PipelineRecord {
        pipeline: PipelineSpec::with_defaults(id, Scope::AllTables).unwrap(),
        source: SourceCluster {
            cluster_arn: format!("arn:aws:rds:eu-west-1:123456789012:cluster:{id}-source"),
            secret_arn: secret_arn.to_string(),
            database: Some(DB.to_string()),
            databases: None,
            host: Some(host.to_string()),
            port: Some(port),
        },
        clone: CloneSettings {
            instance_class: "db.r6g.large".into(),
            db_subnet_group: None,
            security_group_ids: vec![],
            kms_key_id: None,
            secret_arn: None,
            db_cluster_parameter_group: None,
            db_parameter_group: None,
        },
        clone_info: Some(CloneInfo {
            clone_id: format!("clonesync-{id}"),
            host: host.to_string(),
            port,
        }),
        clone_id: None,
        share: None,
        setup_execution: None,
        phase: clonesync::pipeline::Phase::Streaming,
        registered_at: 0,
        triples: vec![],
        apply_groups: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_source_costs_only_its_own_pipeline_and_nothing_leaks() {
    let captured = Captured::install();
    let server = TestServer::start().await;
    let login = server.endpoint();
    let password = login.password.clone().unwrap();
    server
        .client()
        .await
        .execute(
            "SELECT pg_create_logical_replication_slot('clonesync_alive', 'pgoutput')",
            &[],
        )
        .await
        .unwrap();
    // The AWS path, as the Lambda runs it: logins from Secrets Manager and
    // the pipelines from the registry (moto).
    let moto = Moto::start();
    let clients = moto.clients().await;
    moto.create_registry(&clients).await;
    let secret = clients
        .secrets
        .create_secret()
        .name("clonesync/monitor")
        .secret_string(format!(
            r#"{{"username":"{}","password":"{}"}}"#,
            login.user,
            password.expose()
        ))
        .send()
        .await
        .unwrap();
    let secret_arn = secret.arn().unwrap();
    let registry = Registry {
        client: &clients.dynamodb,
        table: TABLE,
    };
    // Port 1 on the loopback: nothing listens there.
    for record in [
        record("alive", secret_arn, "127.0.0.1", login.port),
        record("gone", secret_arn, "127.0.0.1", 1),
    ] {
        registry
            .put_pipeline(&record, &clonesync::pipeline::Expected::Absent)
            .await
            .unwrap();
    }
    // A record that does not decode (damaged, or from another version).
    clients
        .dynamodb
        .put_item()
        .table_name(TABLE)
        .item("pk", AttributeValue::S("pipeline#damaged".into()))
        .item("record", AttributeValue::S("{not json".into()))
        .send()
        .await
        .unwrap();
    let ctx = context(&clients, &moto.settings());

    let (report, lines) = monitor::run(&ctx, 1_795_000_000_000).await.unwrap();
    let docs: Vec<Value> = lines.iter().map(|l| assert_emf(l)).collect();
    assert_eq!(report.pipelines.len(), 3);
    let damaged = find(&docs, &[("Pipeline", "damaged")], "MonitorErrors").unwrap();
    assert_eq!(damaged["MonitorErrors"], 1.0);
    assert_eq!(damaged["Errors"][0]["Side"], "registry");
    let alive = find(
        &docs,
        &[("Pipeline", "alive"), ("Slot", "clonesync_alive")],
        "SlotLagBytes",
    );
    assert_eq!(number(alive, "SlotActive"), 0.0);
    // Its target has no such subscription: read, and reported as not running.
    let alive_target = find(&docs, &[("Pipeline", "alive")], "ApplyWorkerRunning");
    assert_eq!(number(alive_target, "MonitorErrors"), 0.0);
    assert_eq!(number(alive_target, "SubscriptionEnabled"), 0.0);
    let gone = find(&docs, &[("Pipeline", "gone")], "MonitorErrors").unwrap();
    assert_eq!(
        gone["MonitorErrors"], 2.0,
        "source and target unreachable: {gone}"
    );
    assert!(
        gone.get("ApplyWorkerRunning").is_none(),
        "nothing made up for it"
    );
    let sides: BTreeSet<String> = gone["Errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Side"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sides, BTreeSet::from(["source".into(), "target".into()]));
    let gone_errors: Vec<_> = report
        .errors
        .iter()
        .filter(|e| e.pipeline == "gone")
        .collect();
    assert_eq!(gone_errors.len(), 2);
    assert!(gone_errors
        .iter()
        .all(|e| e.error_type == "Transient.Database"));
    assert!(report.errors.iter().any(|e| e.side == Side::Source));
    let summary = find(&docs, &[("Service", "clonesync")], "MonitorErrors");
    assert_eq!(number(summary, "MonitorErrors"), 3.0);
    assert_eq!(number(summary, "PipelinesChecked"), 3.0);

    // No password, no connection string: not in a metric line, not in the
    // report, not in any log line (every level).
    let everything = format!(
        "{}\n{}\n{:?}\n{}",
        lines.join("\n"),
        serde_json::to_string(&report).unwrap(),
        report,
        captured.text()
    );
    assert!(captured
        .text()
        .contains("lag monitor could not read a database"));
    for forbidden in [
        password.expose(),
        "postgres://",
        "password=",
        "postgresql://",
    ] {
        assert!(
            !everything.contains(forbidden),
            "{forbidden:?} leaked:\n{everything}"
        );
    }
}

/// Rows made or removed on the copy by hand, then changed on the source:
/// PostgreSQL 18 counts each conflict by kind, and the monitor publishes
/// the counters and their sum (the conflict alarm's input); before 18 the
/// missing row is skipped without a trace and only the duplicate key shows,
/// as a rising apply error count (the apply error alarm's input).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conflict_on_the_copy_is_counted_and_raises_the_alarm_input() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    source
        .batch_execute("CREATE TABLE probe (id int PRIMARY KEY, v text NOT NULL)")
        .await
        .unwrap();
    let major = clonesync_tests::fixture::server_major(&source).await;
    let (runtime, state, target) =
        clonesync_tests::pipeline::streaming_pipeline(&env, "confl").await;
    let pipeline = [("Pipeline", "confl")];
    let service = [("Service", "clonesync")];

    let (report, docs) = read(&runtime).await;
    let t = &report.targets[0];
    assert_eq!(t.apply_errors, Some(0));
    assert_eq!(t.sync_errors, Some(0));
    assert_eq!(
        number(find(&docs, &service, "ApplyErrors"), "ApplyErrors"),
        0.0
    );
    assert_eq!(number(find(&docs, &service, "Conflicts"), "Conflicts"), 0.0);
    if major >= 18 {
        assert_eq!(t.conflicts_total(), Some(0), "{t:?}");
        assert_eq!(
            number(find(&docs, &pipeline, "Conflicts"), "Conflicts"),
            0.0
        );
    } else {
        assert_eq!(
            t.conflicts, None,
            "PostgreSQL {major} has no conflict counters"
        );
        assert!(find(&docs, &pipeline, "Conflicts").is_none());
    }

    // A row deleted on the copy, then updated on the source.
    source
        .batch_execute("INSERT INTO probe VALUES (1, 'one')")
        .await
        .unwrap();
    wait_rows(&target, "SELECT count(*) FROM probe WHERE id = 1", 1).await;
    target
        .batch_execute("DELETE FROM probe WHERE id = 1")
        .await
        .unwrap();
    source
        .batch_execute(
            "UPDATE probe SET v = 'uno' WHERE id = 1; INSERT INTO probe VALUES (3, 'after')",
        )
        .await
        .unwrap();
    wait_rows(&target, "SELECT count(*) FROM probe WHERE id = 3", 1).await;
    if major >= 18 {
        // The apply worker flushes its conflict counter with its next
        // statistics report, which comes with a later transaction (or a
        // wake-up that may be half a minute away): a row a second on the
        // source gives it one, as a live source does.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut nudge: i32 = 1000;
        let counted = loop {
            let (report, _) = read(&runtime).await;
            if conflict(&report, "update_missing") >= 1 {
                break report;
            }
            assert!(
                Instant::now() < deadline,
                "waited a minute for update_missing to be counted: {report:?}"
            );
            nudge += 1;
            source
                .execute("INSERT INTO probe VALUES ($1, 'nudge')", &[&nudge])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(1000)).await;
        };
        assert_eq!(
            counted.targets[0].apply_errors,
            Some(0),
            "skipped, not failed"
        );
    } else {
        let (report, _) = read(&runtime).await;
        assert_eq!(
            report.targets[0].apply_errors,
            Some(0),
            "before 18 the update of a missing row is skipped silently"
        );
    }

    // A row inserted on the copy, then the same key on the source: the
    // worker fails on the duplicate and retries.
    target
        .batch_execute("INSERT INTO probe VALUES (2, 'made on the copy')")
        .await
        .unwrap();
    source
        .batch_execute("INSERT INTO probe VALUES (2, 'made on the source')")
        .await
        .unwrap();
    let first = wait_for(&runtime, "an apply error", |r| {
        r.targets[0].apply_errors.unwrap_or(0) >= 1
    })
    .await;
    let first_errors = first.targets[0].apply_errors.unwrap();
    let risen = wait_for(&runtime, "the apply error count to rise again", |r| {
        r.targets[0].apply_errors.unwrap_or(0) > first_errors
    })
    .await;
    let (_, docs) = read(&runtime).await;
    let errors_now = number(find(&docs, &service, "ApplyErrors"), "ApplyErrors");
    assert!(
        errors_now > first_errors as f64,
        "the alarm's input (ApplyErrors, watched for any increase) rose: {first_errors} -> {errors_now}"
    );
    assert!(
        number(find(&docs, &pipeline, "ApplyErrors"), "ApplyErrors") >= errors_now,
        "{docs:?}"
    );
    if major >= 18 {
        assert!(
            conflict(&risen, "insert_exists") >= 1,
            "{:?}",
            risen.targets
        );
        assert!(conflict(&risen, "update_missing") >= 1);
        let total = number(find(&docs, &service, "Conflicts"), "Conflicts");
        assert!(total >= 2.0, "the conflict alarm's input: {total}");
        assert!(
            number(
                find(&docs, &pipeline, "ConflictInsertExists"),
                "ConflictInsertExists"
            ) >= 1.0
        );
        assert!(
            number(
                find(&docs, &pipeline, "ConflictUpdateMissing"),
                "ConflictUpdateMissing"
            ) >= 1.0
        );
        assert!(number(find(&docs, &pipeline, "Conflicts"), "Conflicts") >= 2.0);
    } else {
        assert_eq!(number(find(&docs, &service, "Conflicts"), "Conflicts"), 0.0);
    }

    // The copy's row removed by hand: apply goes on, and the source's row
    // arrives.
    target
        .batch_execute("DELETE FROM probe WHERE id = 2")
        .await
        .unwrap();
    wait_rows(
        &target,
        "SELECT count(*) FROM probe WHERE id = 2 AND v = 'made on the source'",
        1,
    )
    .await;
    runtime.teardown(&state).await.unwrap();
}

fn conflict(report: &MonitorReport, kind: &str) -> i64 {
    report.targets[0]
        .conflicts
        .as_ref()
        .and_then(|c| c.get(kind).copied())
        .unwrap_or(0)
}

async fn wait_rows(client: &tokio_postgres::Client, sql: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n: i64 = client.query_one(sql, &[]).await.expect("count rows").get(0);
        if n == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: {n}, not {expected}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// PostgreSQL 19 renamed `pg_stat_subscription_stats.sync_error_count` to
/// `sync_table_error_count` and counts sequence synchronization errors
/// apart; 18 added the `confl_*` counters. Every counter is read by
/// pattern, so a row shaped as 15's, 18's or 19's reads as it should, and
/// a missing row (no stats yet) reads as nothing.
#[tokio::test]
async fn subscription_counters_are_read_whatever_the_version_names_them() {
    use clonesync::pg::lag::{stats_counters, STATS_COUNTERS_SQL};
    let server = clonesync_tests::fixture::TestServer::start().await;
    let client = server.client().await;
    let conflicts = |pairs: &[(&str, i64)]| {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<std::collections::BTreeMap<_, _>>(),
        )
    };
    for (shape, row, apply, sync, confl) in [
        (
            "15",
            "SELECT 1::oid AS subid, 5::bigint AS apply_error_count, 2::bigint AS sync_error_count, now() AS stats_reset",
            Some(5),
            Some(2),
            None,
        ),
        (
            "18",
            "SELECT 1::oid AS subid, 5::bigint AS apply_error_count, 2::bigint AS sync_error_count, \
             1::bigint AS confl_insert_exists, 0::bigint AS confl_update_missing, now() AS stats_reset",
            Some(5),
            Some(2),
            conflicts(&[("insert_exists", 1), ("update_missing", 0)]),
        ),
        (
            "19",
            "SELECT 1::oid AS subid, 5::bigint AS apply_error_count, 2::bigint AS sync_table_error_count, \
             1::bigint AS sync_seq_error_count, 3::bigint AS confl_insert_exists, now() AS stats_reset",
            Some(5),
            Some(3),
            conflicts(&[("insert_exists", 3)]),
        ),
        (
            "no stats row",
            "SELECT NULL::oid AS subid WHERE false UNION ALL SELECT NULL",
            None,
            None,
            None,
        ),
    ] {
        let sql = if shape == "no stats row" {
            format!("SELECT {STATS_COUNTERS_SQL} FROM (SELECT 1) one LEFT JOIN ({row}) st ON false")
        } else {
            format!("SELECT {STATS_COUNTERS_SQL} FROM ({row}) st")
        };
        let read = client.query_one(&sql, &[]).await.unwrap();
        let counters = stats_counters(&read, 0);
        assert_eq!(counters.apply_error_count, apply, "{shape}");
        assert_eq!(counters.sync_error_count, sync, "{shape}");
        assert_eq!(counters.conflicts, confl, "{shape}");
    }
}

/// What has not arrived is said: schema changes the source captured and
/// the copy has not received (here behind a disabled subscription) are
/// counted with the age of the oldest, in the report and as EMF, until
/// they arrive; none before, none after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schema_changes_captured_but_not_arrived_are_counted_until_they_arrive() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .unwrap();
    let input = runtime.request("fly", json!({"kind": "all_tables"}), DB, Waits::default());
    let outcome = runtime.run("fly", &input, &mut |_| {}).await.unwrap();
    assert!(outcome.succeeded(), "{:?}", outcome.cause);
    let state = outcome.state().unwrap();
    let in_flight = |report: &MonitorReport| {
        report
            .targets
            .iter()
            .find_map(|t| t.schema_changes_in_flight)
            .expect("a reading of the queues")
    };
    let (report, _) = read(&runtime).await;
    assert_eq!(in_flight(&report).commands, 0, "{report:?}");

    let target = connect(
        &runtime
            .cloud
            .control_plane()
            .clone_login(state.clone_info().unwrap()),
    )
    .await;
    target
        .batch_execute("ALTER SUBSCRIPTION clonesync_fly DISABLE")
        .await
        .unwrap();
    for ddl in [
        "CREATE TABLE public.flying (id int PRIMARY KEY)",
        "ALTER TABLE public.flying ADD COLUMN x int",
        "CREATE INDEX flying_x ON public.flying (x)",
    ] {
        source.batch_execute(ddl).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (report, docs) = read(&runtime).await;
    let flying = in_flight(&report);
    assert_eq!(flying.commands, 3, "{report:?}");
    assert!(flying.oldest_seconds.unwrap() >= 1.0, "{flying:?}");
    let pipeline = find(&docs, &[("Pipeline", "fly")], "SchemaChangesInFlight");
    assert_eq!(number(pipeline, "SchemaChangesInFlight"), 3.0);
    assert!(number(pipeline, "OldestSchemaChangeInFlightSeconds") >= 1.0);

    target
        .batch_execute("ALTER SUBSCRIPTION clonesync_fly ENABLE")
        .await
        .unwrap();
    wait_for(&runtime, "the changes to arrive", |r| {
        in_flight(r).commands == 0
    })
    .await;
    runtime.teardown(&state).await.unwrap();
}
