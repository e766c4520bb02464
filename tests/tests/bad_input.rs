//! Bad input gets a named error and leaves nothing behind.

use clonesync::pg::{PgName, SlotName, TableName};
use clonesync::pipeline::Scope;
use clonesync::pipeline::{PipelineSpec, UndoPlan};
use clonesync::steps::{cleanup, clone, clone_lsn, prepare_source};
use clonesync::Error;
use clonesync_tests::fixture::connect;
use clonesync_tests::pipeline::{attach, run_until, slots_and_publications, Stage};
use clonesync_tests::{compare_tables, create_schema, tables_in, wait_for_marker, TestEnv};
use std::time::Duration;
use tokio_postgres::Client;

fn spec(id: &str) -> PipelineSpec {
    PipelineSpec::with_defaults(id, Scope::AllTables).unwrap()
}

fn failed_checks(error: &Error) -> Vec<String> {
    match error {
        Error::PreflightFailed { failures } => failures.iter().map(|f| f.check.clone()).collect(),
        other => panic!("expected Preflight.Failed, got {}: {other}", other.name()),
    }
}

async fn assert_nothing_left(source: &Client) {
    assert_eq!(
        slots_and_publications(source).await,
        (vec![], vec![]),
        "something was left behind"
    );
}

#[test]
fn names_over_63_bytes_are_refused_everywhere() {
    let long = "a".repeat(64);
    assert_eq!(PgName::new(&long).unwrap_err().name(), "Input.Invalid");
    assert_eq!(SlotName::new(&long).unwrap_err().name(), "Input.Invalid");
    assert_eq!(
        TableName::new("public", &long).unwrap_err().name(),
        "Input.Invalid"
    );
    // A pipeline id whose derived names would not fit.
    assert_eq!(
        PipelineSpec::with_defaults(&"p".repeat(60), Scope::AllTables)
            .unwrap_err()
            .name(),
        "Input.Invalid"
    );
    // And from JSON, as the state machine would pass it.
    let json = format!(
        r#"{{"id":"x","publication":"{long}","slot":"s","subscription":"s","scope":{{"kind":"all_tables"}}}}"#
    );
    assert!(serde_json::from_str::<PipelineSpec>(&json).is_err());
    assert_eq!(Scope::schemas(vec![]).unwrap_err().name(), "Input.Invalid");
}

#[test]
fn slot_names_with_quotes_or_semicolons_are_refused() {
    for bad in ["s'; DROP TABLE x; --", "s\"x", "s;x", "S"] {
        assert_eq!(
            SlotName::new(bad).unwrap_err().name(),
            "Input.Invalid",
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_attempts_in_names_are_inert() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    // The subscription logs in as a role whose name and password need
    // quoting both in a connection string and in SQL.
    let role = "o'brien \\ \"repl\"";
    let password = "it's a \\ \"pw\"; --";
    source
        .batch_execute(&format!(
            "CREATE ROLE {r} LOGIN REPLICATION PASSWORD {p}; \
             GRANT USAGE ON SCHEMA \"Sales Schema\" TO {r}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public, \"Sales Schema\" TO {r}",
            r = clonesync::pg::quote::ident(role),
            p = clonesync::pg::quote::literal(password)
        ))
        .await
        .unwrap();
    let subscriber_login = clonesync::pg::Endpoint {
        user: role.to_string(),
        password: Some(clonesync::pg::Secret::new(password)),
        ..env.source_endpoint()
    };
    let tables = tables_in(&source, &["public", "Sales Schema"]).await;
    let spec = PipelineSpec {
        id: clonesync::pipeline::PipelineId::new("inj").unwrap(),
        publication: PgName::new("p\"; DROP TABLE public.accounts; --").unwrap(),
        slot: SlotName::new("clonesync_inj").unwrap(),
        subscription: PgName::new("s'); DROP TABLE public.documents; --").unwrap(),
        scope: Scope::tables(tables.clone()).unwrap(),
        schema_changes: true,
        setup_mark: String::new(),
        keyless_full: false,
    };
    let mut source = env.source_client().await;
    env.preflight(&spec).await.unwrap();
    let prepared = prepare_source::run(&mut source, &spec).await.unwrap();
    let info = clone::run(&env.plane, &spec).await.unwrap();
    let target = connect(&env.plane.clone_login(&info)).await;
    attach(
        &env.plane,
        &source,
        &target,
        &info,
        &spec,
        prepared.consistent_lsn,
        &subscriber_login.conninfo(),
    )
    .await;

    // The objects carry the names verbatim, and every table is still there.
    let (_, publications) = slots_and_publications(&source).await;
    assert_eq!(publications, vec![spec.publication.to_string()]);
    let subname: String = target
        .query_one("SELECT subname::text FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(subname, spec.subscription.as_str());
    source
        .batch_execute("INSERT INTO public.accounts (owner, balance) VALUES ('after', 1)")
        .await
        .unwrap();
    wait_for_marker(&source, &target, Duration::from_secs(30))
        .await
        .unwrap();
    let (states, differences) = compare_tables(&source, &target, &tables).await;
    assert_eq!(states.len(), 8);
    assert!(differences.is_empty(), "{differences:#?}");

    let created = UndoPlan {
        publication: true,
        slot: true,
        clone: Some(info.clone_id),
        subscription: true,
        share: None,
    };
    cleanup::run(&env.plane, &source, Some(&target), &spec, &created)
        .await
        .unwrap();
    assert_nothing_left(&source).await;
}

#[tokio::test]
async fn a_table_without_a_key_in_scope_fails_preflight_and_leaves_nothing() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    source
        .batch_execute("CREATE TABLE public.no_key (a int, b text)")
        .await
        .unwrap();
    let error = env.preflight(&spec("nokey")).await.unwrap_err();
    assert_eq!(failed_checks(&error), vec!["replica_identity"]);
    assert!(error.to_string().contains("no_key"), "{error}");
    // The same table outside the scope is fine.
    let scoped = PipelineSpec::with_defaults(
        "scoped",
        Scope::tables(vec![TableName::new("public", "accounts").unwrap()]).unwrap(),
    )
    .unwrap();
    env.preflight(&scoped).await.unwrap();
    // A missing table in a list is reported too.
    let missing = PipelineSpec::with_defaults(
        "missing",
        Scope::tables(vec![TableName::new("public", "nope").unwrap()]).unwrap(),
    )
    .unwrap();
    let error = env.preflight(&missing).await.unwrap_err();
    assert_eq!(failed_checks(&error), vec!["scope_exists"]);
    assert_nothing_left(&source).await;
}

#[tokio::test]
async fn wal_level_replica_is_a_named_failure_and_leaves_nothing() {
    let env = TestEnv::start_with_setting("wal_level", "replica").await;
    let mut source = env.source_client().await;
    create_schema(&source).await;
    source
        .batch_execute("CREATE TABLE public.no_key (a int)")
        .await
        .unwrap();
    let spec = spec("replica");
    let error = env.preflight(&spec).await.unwrap_err();
    // Every failure at once, not just the first.
    assert_eq!(
        failed_checks(&error),
        vec!["logical_decoding", "replica_identity"]
    );
    let error = prepare_source::run(&mut source, &spec).await.unwrap_err();
    assert_eq!(failed_checks(&error), vec!["logical_decoding"]);
    assert_nothing_left(&source).await;
}

#[tokio::test]
async fn no_free_slot_is_a_named_failure_and_leaves_nothing() {
    let env = TestEnv::start_with_setting("max_replication_slots", "1").await;
    let mut source = env.source_client().await;
    create_schema(&source).await;
    source
        .batch_execute("SELECT pg_create_logical_replication_slot('someone_else', 'pgoutput')")
        .await
        .unwrap();
    let spec = spec("noslots");
    let error = env.preflight(&spec).await.unwrap_err();
    assert!(
        failed_checks(&error).contains(&"free_replication_slots".to_string()),
        "{error}"
    );
    let error = prepare_source::run(&mut source, &spec).await.unwrap_err();
    assert_eq!(error.name(), "Source.NoFreeSlots", "{error}");
    // Only the other slot; our publication was undone.
    assert_eq!(
        slots_and_publications(&source).await,
        (vec!["someone_else".to_string()], vec![])
    );
}

#[tokio::test]
async fn a_slot_name_taken_by_something_else_is_a_conflict_and_is_not_touched() {
    let env = TestEnv::start().await;
    let mut source = env.source_client().await;
    create_schema(&source).await;
    let physical = spec("taken_physical");
    source
        .execute(
            "SELECT pg_create_physical_replication_slot($1)",
            &[&physical.slot.as_str()],
        )
        .await
        .unwrap();
    let error = env.preflight(&physical).await.unwrap_err();
    assert_eq!(failed_checks(&error), vec!["slot_name"]);
    let error = prepare_source::run(&mut source, &physical)
        .await
        .unwrap_err();
    assert_eq!(error.name(), "Source.SlotConflict", "{error}");
    assert!(error.to_string().contains("physical"), "{error}");

    let other_plugin = spec("taken_plugin");
    source
        .execute(
            "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
            &[&other_plugin.slot.as_str()],
        )
        .await
        .unwrap();
    let error = prepare_source::run(&mut source, &other_plugin)
        .await
        .unwrap_err();
    assert_eq!(error.name(), "Source.SlotConflict");
    assert!(error.to_string().contains("test_decoding"), "{error}");

    // Both foreign slots untouched; no publication left from either attempt.
    let (slots, publications) = slots_and_publications(&source).await;
    assert_eq!(
        slots,
        vec![
            "clonesync_taken_physical".to_string(),
            "clonesync_taken_plugin".to_string()
        ]
    );
    assert!(publications.is_empty(), "{publications:?}");
}

#[tokio::test]
async fn a_publication_with_another_table_set_is_a_conflict_and_is_not_touched() {
    let env = TestEnv::start().await;
    let mut source = env.source_client().await;
    create_schema(&source).await;
    let spec = spec("pubconflict");
    source
        .batch_execute(&format!(
            "CREATE PUBLICATION {} FOR TABLE public.accounts",
            spec.publication.quoted()
        ))
        .await
        .unwrap();
    let error = prepare_source::run(&mut source, &spec).await.unwrap_err();
    assert_eq!(error.name(), "Source.PublicationConflict", "{error}");
    let (slots, publications) = slots_and_publications(&source).await;
    assert!(slots.is_empty(), "no slot for a conflicting publication");
    assert_eq!(publications, vec![spec.publication.to_string()]);
    // A publication with the same table set but not made by clonesync:
    // with schema changes on it lacks the queue table, which is named (the
    // user's publication is not altered)...
    let mut same_set = PipelineSpec::with_defaults(
        "pubconflict",
        Scope::tables(vec![TableName::new("public", "accounts").unwrap()]).unwrap(),
    )
    .unwrap();
    let error = prepare_source::run(&mut source, &same_set)
        .await
        .unwrap_err();
    assert_eq!(error.name(), "Source.PublicationConflict", "{error}");
    assert!(error.to_string().contains("ddl_queue"), "{error}");
    // ...and with them off it is reused and not claimed: cleanup would
    // leave it.
    same_set.schema_changes = false;
    let prepared = prepare_source::run(&mut source, &same_set).await.unwrap();
    assert!(!prepared.publication_created && prepared.slot_created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_taken_before_the_slot_is_out_of_range() {
    let env = TestEnv::start().await;
    let mut source = env.source_client().await;
    create_schema(&source).await;
    let spec = spec("early");
    // The wrong order: clone first, then the slot.
    let info = clone::run(&env.plane, &spec).await.unwrap();
    source
        .batch_execute("INSERT INTO public.accounts (owner, balance) VALUES ('between', 1)")
        .await
        .unwrap();
    let prepared = prepare_source::run(&mut source, &spec).await.unwrap();
    let target = connect(&env.plane.clone_login(&info)).await;
    let error = clone_lsn::run(
        &env.plane,
        &source,
        &target,
        &spec,
        &info,
        prepared.consistent_lsn,
    )
    .await
    .unwrap_err();
    assert_eq!(error.name(), "Clone.LsnOutOfRange", "{error}");
    // The check created nothing; cleanup of what the run made leaves nothing.
    let created = UndoPlan {
        publication: true,
        slot: true,
        clone: Some(info.clone_id),
        subscription: false,
        share: None,
    };
    drop(target);
    cleanup::run(&env.plane, &source, None, &spec, &created)
        .await
        .unwrap();
    assert_nothing_left(&source).await;
    assert!(env.clone_dirs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_after_a_failure_at_each_stage_leaves_no_slot_and_no_publication() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    for (n, stage) in clonesync_tests::pipeline::STAGES.iter().enumerate() {
        for target_reachable in [true, false] {
            let spec = spec(&format!("stage{n}_{target_reachable}"));
            let (created, clone) = run_until(&env, &spec, *stage).await;
            let (slots, _) = slots_and_publications(&source).await;
            assert_eq!(slots, vec![spec.slot.to_string()], "{stage:?}");
            let clones_running = usize::from(*stage >= Stage::Cloned);
            assert_eq!(env.running_servers(), clones_running, "{stage:?}");
            // An unreachable target must not keep the source slot alive,
            // even while its WAL sender is streaming to the clone.
            let target = if target_reachable {
                clone.as_ref().map(|(_, c)| c)
            } else {
                None
            };
            let report = cleanup::run(&env.plane, &source, target, &spec, &created)
                .await
                .unwrap();
            assert!(report.slot_dropped, "{stage:?}: {report:?}");
            assert_nothing_left(&source).await;
            assert!(env.clone_dirs().is_empty(), "{stage:?}: clone left");
            assert_eq!(env.running_servers(), 0);
            if *stage >= Stage::Enabled && !target_reachable {
                assert!(!report.subscription_dropped);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_clone_inherits_is_dropped_and_nothing_else() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    // The source is itself a subscriber of something (disabled, no slot
    // created): the clone copies that subscription and a user publication.
    source
        .batch_execute(
            "CREATE SUBSCRIPTION upstream_feed CONNECTION 'host=127.0.0.1 port=1 dbname=none' \
             PUBLICATION upstream WITH (connect = false); \
             CREATE PUBLICATION users_own_pub FOR TABLE public.events",
        )
        .await
        .unwrap();
    let spec = spec("inherit");
    let (created, clone) = run_until(&env, &spec, Stage::Cloned).await;
    let (_, target) = clone.unwrap();
    // A logical slot on the clone, as an Aurora clone would carry over.
    target
        .batch_execute("SELECT pg_create_logical_replication_slot('inherited_slot', 'pgoutput')")
        .await
        .unwrap();
    let cleaned = clonesync::steps::clean_inherited::run(&target, &spec)
        .await
        .unwrap();
    assert_eq!(
        cleaned.subscriptions_dropped,
        vec!["upstream_feed".to_string()]
    );
    assert_eq!(cleaned.slots_dropped, vec!["inherited_slot".to_string()]);
    assert!(cleaned.publication_dropped);
    let (slots, publications) = slots_and_publications(&target).await;
    assert!(slots.is_empty());
    assert_eq!(
        publications,
        vec!["users_own_pub".to_string()],
        "only the pipeline's publication is dropped"
    );
    // On the source, the subscription of its own is untouched.
    let subs: i64 = source
        .query_one("SELECT count(*) FROM pg_subscription", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(subs, 1);
    cleanup::run(&env.plane, &source, Some(&target), &spec, &created)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_that_cannot_reach_its_target_fails_and_leaves_nothing() {
    let mut env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    env.plane.promote_timeout = Duration::from_secs(3);
    // A target beyond anything the source has written: recovery waits for
    // WAL that never comes.
    let error = env
        .plane
        .create_clone_at("unreachable", async |src: &Client| {
            let now = clonesync::pg::wal::current_lsn(src).await?;
            Ok(clonesync::pg::Lsn::from(now.as_u64() + (1 << 30)))
        })
        .await
        .unwrap_err();
    assert_eq!(error.name(), "Clone.Failed", "{error}");
    assert!(
        env.clone_dirs().is_empty(),
        "a failed clone left its directory"
    );
    assert_eq!(env.running_servers(), 0);
    // pg_basebackup's temporary slot went with it.
    assert_nothing_left(&source).await;
}

/// Preflight names, before any slot exists, a login that is not a
/// superuser, a busy clone port (an unlogged table in scope is only a
/// warning: PostgreSQL does not replicate it), and (through
/// the state machine's own preflight task) too few slots for the local
/// clone's base backup besides the pipeline's slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_names_privileges_a_busy_port_and_the_clones_slots_and_only_warns_of_unlogged_tables(
) {
    let env = TestEnv::start_with_setting("max_replication_slots", "2").await;
    let source = env.source_client().await;
    create_schema(&source).await;
    source
        .batch_execute(
            "CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY); \
             CREATE ROLE plain_login LOGIN PASSWORD 'plain-pw'; \
             GRANT ALL ON ALL TABLES IN SCHEMA public TO plain_login",
        )
        .await
        .unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut plane = env.plane.clone();
    plane.clone_port = Some(busy.local_addr().unwrap().port());
    let error = clonesync_tests::fixture::preflight_with(&plane, &spec("checks"))
        .await
        .unwrap_err();
    let checks = failed_checks(&error);
    assert!(checks.contains(&"clone_port".to_string()), "{checks:?}");
    assert!(
        !checks.contains(&"unlogged_tables".to_string()),
        "{checks:?}"
    );

    let plain = clonesync_local::LocalControlPlane::new(
        clonesync::pg::Endpoint {
            user: "plain_login".into(),
            password: Some(clonesync::pg::Secret::new("plain-pw")),
            ..env.source_endpoint()
        },
        &env.root_path.join("clones"),
        clonesync_local::PgBinaries::locate().unwrap(),
        clonesync_local::RunAs::detect().unwrap(),
    );
    let error = clonesync_tests::fixture::preflight_with(&plain, &spec("checks"))
        .await
        .unwrap_err();
    assert!(
        failed_checks(&error).contains(&"login_privileges".to_string()),
        "{error}"
    );
    // Schema changes are on by default: the failure names the event
    // trigger and the fix on Aurora.
    assert!(error.to_string().contains("event trigger"), "{error}");
    assert!(
        error.to_string().contains("GRANT rds_superuser TO"),
        "{error}"
    );

    // The state machine's preflight counts the base backup's slot too:
    // two slots is one short of the pipeline's plus the copy's.
    let input = clonesync_local::runtime::request(
        "checks",
        serde_json::json!({"kind": "schemas", "schemas": ["Sales Schema"]}),
        clonesync_tests::fixture::DB,
        clonesync::pipeline::Waits::default(),
    );
    let state = clonesync::workflow::state::validate(input, clonesync_local::moto::REGION).unwrap();
    let error = clonesync::workflow::preflight(&env.plane, &state)
        .await
        .unwrap_err();
    assert!(
        failed_checks(&error).contains(&"free_replication_slots".to_string()),
        "{error}"
    );
    assert_nothing_left(&source).await;
}

/// A clone that fails says why in its error: the base backup's own line,
/// once, never the password, and the local failure kept as its cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_clone_names_its_cause_without_the_password() {
    use clonesync::ports::ControlPlane;
    use std::error::Error as _;
    let env = TestEnv::start().await;
    let wrong = clonesync::pg::Endpoint {
        password: Some(clonesync::pg::Secret::new("wrong-canary-pw")),
        ..env.source_endpoint()
    };
    let plane = clonesync_local::LocalControlPlane::new(
        wrong,
        &env.root_path.join("clones"),
        clonesync_local::PgBinaries::locate().unwrap(),
        clonesync_local::RunAs::detect().unwrap(),
    );
    let error = plane.create_clone("clonesync-wrong").await.unwrap_err();
    assert_eq!(error.name(), "Clone.Failed", "{error}");
    let text = error.to_string();
    assert!(text.contains("pg_basebackup failed"), "{text}");
    assert_eq!(
        text.matches("password authentication failed").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("wrong-canary-pw"), "{text}");
    let cause = error.source().expect("the local failure is kept");
    assert!(cause.to_string().contains("pg_basebackup"), "{cause}");
    assert!(!env
        .root_path
        .join("clones")
        .join("clonesync-wrong")
        .exists());
}

/// Local PostgreSQL binaries of another major than the source: named by
/// preflight, before the slot that pg_basebackup would refuse to copy for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_of_another_major_fail_preflight() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    let fake = env.root_path.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let program = fake.join("pg_basebackup");
    std::fs::write(
        &program,
        "#!/bin/sh\necho 'pg_basebackup (PostgreSQL) 99.1'\n",
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let plane = clonesync_local::LocalControlPlane::new(
        env.source_endpoint(),
        &env.root_path.join("clones"),
        clonesync_local::PgBinaries { dir: fake },
        clonesync_local::RunAs::detect().unwrap(),
    );
    let error = clonesync_tests::fixture::preflight_with(&plane, &spec("major"))
        .await
        .unwrap_err();
    assert!(
        failed_checks(&error).contains(&"local_clone_binaries_version".to_string()),
        "{error}"
    );
    assert!(error.to_string().contains("version 99"), "{error}");
    // The machine's own binaries match: no such failure.
    let report = env.preflight(&spec("major")).await;
    assert!(report.is_ok(), "{report:?}");
    assert_nothing_left(&source).await;
}
