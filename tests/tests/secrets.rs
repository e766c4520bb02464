//! Passwords never reach a log line, an error, a step output or a server
//! log — checked with every log level on, the driver's statement logging
//! included (so the check can fail).

use clonesync::pg::{Endpoint, PgName, Secret};
use clonesync::pipeline::Scope;
use clonesync::pipeline::{PipelineSpec, UndoPlan};
use clonesync::steps::{cleanup, clone, create_subscription, prepare_source};
use clonesync_tests::capture::Captured;
use clonesync_tests::fixture::connect;
use clonesync_tests::pipeline::attach;
use clonesync_tests::{create_schema, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_in_logs_errors_outputs_or_server_logs() {
    let captured = Captured::install();

    let env = TestEnv::start().await;
    let canary = env.source.password.expose().to_string();
    let mut source = env.source_client().await;
    create_schema(&source).await;
    let spec = PipelineSpec::with_defaults("secrets", Scope::AllTables).unwrap();
    let mut outputs: Vec<String> = Vec::new();
    let mut keep = |value: String| outputs.push(value);

    let report = env.preflight(&spec).await.unwrap();
    keep(serde_json::to_string(&report).unwrap());
    let prepared = prepare_source::run(&mut source, &spec).await.unwrap();
    keep(serde_json::to_string(&prepared).unwrap());
    let info = clone::run(&env.plane, &spec).await.unwrap();
    keep(serde_json::to_string(&info).unwrap());
    let target = connect(&env.plane.clone_login(&info)).await;
    let conninfo = env.source_endpoint().conninfo();
    let attached = attach(
        &env.plane,
        &source,
        &target,
        &info,
        &spec,
        prepared.consistent_lsn,
        &conninfo,
    )
    .await;
    keep(serde_json::to_string(&attached).unwrap());
    keep(format!(
        "{:?} {:?} {:?}",
        env.source_endpoint(),
        conninfo,
        spec
    ));

    // A subscription whose login fails: the error must not carry the
    // password it was given.
    let wrong = "wrong-canary-7f3a9c";
    let bad_login = Endpoint {
        password: Some(Secret::new(wrong)),
        ..env.source_endpoint()
    };
    let other = PipelineSpec {
        subscription: PgName::new("secrets_bad_login").unwrap(),
        ..spec.clone()
    };
    let error = create_subscription::run(&target, &other, &bad_login.conninfo())
        .await
        .unwrap_err();
    keep(format!("{error} {error:?} {}", error.name()));
    assert!(
        error.to_string().contains("password authentication failed"),
        "{error}"
    );
    // And a connection that fails.
    let error = clonesync::pg::connect(&bad_login, &Default::default())
        .await
        .unwrap_err();
    keep(format!("{error} {error:?}"));

    let created = UndoPlan {
        publication: true,
        slot: true,
        clone: Some(info.clone_id.clone()),
        subscription: true,
        share: None,
    };
    let clone_log = env
        .plane
        .clone_server(&info.clone_id)
        .unwrap()
        .unwrap()
        .log();
    keep(
        serde_json::to_string(
            &cleanup::run(&env.plane, &source, Some(&target), &spec, &created)
                .await
                .unwrap(),
        )
        .unwrap(),
    );

    let logs = captured.text();
    assert!(
        logs.contains("executing") && logs.contains("clonesync_create_subscription"),
        "driver statement logging was not captured, so this test could not fail:\n{logs}"
    );
    for (what, text) in [
        ("client logs", &logs),
        ("clone server log", &clone_log),
        ("source server log", &env.source.log()),
    ] {
        assert!(
            !text.contains(&canary),
            "the password appears in the {what}"
        );
        assert!(
            !text.contains(wrong),
            "the wrong password appears in the {what}"
        );
    }
    for output in &outputs {
        assert!(
            !output.contains(&canary) && !output.contains(wrong),
            "a step output carries a password: {output}"
        );
    }
    // The clone's recovery settings held the password; they are gone.
    assert!(!env
        .root_path
        .join("clones")
        .join(&info.clone_id)
        .join("data/clonesync_recovery.conf")
        .exists());
}

/// The source secret rotates while the pipeline streams under a write
/// load: the source login's password changes on the source, the secret's
/// versions move (`AWSCURRENT` new, `AWSPREVIOUS` old), and the apply
/// worker's connection breaks as any network blip would break it. Its
/// reconnects are refused, so the copy stops; the lag monitor's next run
/// gives the clone's copy of the login the new password and the
/// subscription a connection from the new version, and the copy catches
/// up with every row. A second monitor run changes nothing; teardown still
/// reaches the clone; neither password reaches a log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_password_rotated_while_streaming_is_followed_and_nothing_is_lost() {
    use clonesync::ports::ControlPlane;
    use clonesync_local::LocalRuntime;
    use clonesync_tests::fixture::DB;
    use clonesync_tests::{compare_tables, tables_in, wait_for_marker, Workload};
    use std::time::{Duration, Instant};

    let captured = Captured::install();
    let env = TestEnv::start().await;
    let old_password = env.source.password.expose().to_string();
    let source = env.source_client().await;
    create_schema(&source).await;
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .unwrap();
    let input = runtime.request(
        "rot",
        serde_json::json!({"kind": "all_tables"}),
        DB,
        clonesync_tests::pipeline::short_waits(),
    );
    let outcome = runtime.run("rot", &input, &mut |_| {}).await.unwrap();
    assert!(outcome.succeeded(), "{:?}", outcome.cause);
    let state = outcome.state().unwrap();
    let info = state.clone_info().unwrap().clone();
    let load = Workload::start(env.source_endpoint(), 2, 23, Duration::from_millis(2));
    load.wait_for_more(100).await;

    let new_password = "rotated-canary-5d1e8b";
    let version = env
        .plane
        .rotate_source_password(Secret::new(new_password))
        .await
        .unwrap();
    assert_eq!(version, "2");
    // A network blip: the walsender ends, the worker reconnects.
    source
        .execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
             WHERE slot_name = 'clonesync_rot' AND active_pid IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    // Without following the rotation the copy stays stopped: the slot is
    // inactive and the source refuses the worker's old password, across
    // two of its retry intervals (wal_retrieve_retry_interval, 5 s).
    let refused_at = Instant::now();
    let refusal = "password authentication failed";
    while refused_at.elapsed() < Duration::from_secs(11) {
        let active: bool = source
            .query_one(
                "SELECT active FROM pg_replication_slots WHERE slot_name = 'clonesync_rot'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if refused_at.elapsed() > Duration::from_secs(1) {
            assert!(!active, "the worker reconnected with the old password");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        env.source.log().matches(refusal).count() >= 2,
        "the source did not refuse the worker's old password"
    );
    // The old login no longer works on the source, the new one does not
    // work on the clone yet.
    let new_clone_login = env.plane.clone_login(&info);
    assert!(
        clonesync::pg::connect(&new_clone_login, &Default::default())
            .await
            .is_err()
    );

    // One monitor run follows the rotation.
    let (report, _) = clonesync::monitor::run(&*runtime.cloud, 1_795_000_000_000)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let target = connect(&new_clone_login).await;
    let current = env.plane.source_endpoint().await.unwrap();
    let source_now = connect(&current).await;
    let started = Instant::now();
    while apply_worker(&target).await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the apply worker did not start again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    load.wait_for_more(200).await;
    let stats = load.stop().await;
    assert!(stats.committed > 300);
    wait_for_marker(&source_now, &target, Duration::from_secs(60))
        .await
        .unwrap();
    let tables = tables_in(&source_now, &["public", "Sales Schema"]).await;
    let (states, differences) = compare_tables(&source_now, &target, &tables).await;
    assert_eq!(states.len(), 8, "every table of the schema compared");
    assert!(differences.is_empty(), "tables differ: {differences:#?}");

    // Twice = once: the second run finds the version marked and leaves the
    // worker as it is.
    let pid = apply_worker(&target).await;
    let (report, _) = clonesync::monitor::run(&*runtime.cloud, 1_795_000_060_000)
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(apply_worker(&target).await, pid, "the worker was restarted");
    let comment: Option<String> = target
        .query_one(
            "SELECT obj_description(oid, 'pg_subscription') FROM pg_subscription WHERE subname = 'clonesync_rot'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        comment.as_deref(),
        Some("clonesync: source login version 2")
    );
    drop(target);

    let clone_log = env
        .plane
        .clone_server(&info.clone_id)
        .unwrap()
        .unwrap()
        .log();
    runtime.teardown(&state).await.unwrap();
    let (slots, publications) =
        clonesync_tests::pipeline::slots_and_publications(&source_now).await;
    assert!(
        slots.is_empty() && publications.is_empty(),
        "{slots:?} {publications:?}"
    );

    let logs = captured.text();
    for (what, text) in [
        ("client logs", &logs),
        ("clone server log", &clone_log),
        ("source server log", &env.source.log()),
    ] {
        for password in [old_password.as_str(), new_password] {
            assert!(!text.contains(password), "a password appears in the {what}");
        }
    }
}

/// The subscription's apply worker's process, if it runs.
async fn apply_worker(target: &tokio_postgres::Client) -> Option<i32> {
    target
        .query_one(
            "SELECT pid FROM pg_stat_subscription WHERE subname = 'clonesync_rot' AND relid IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}
