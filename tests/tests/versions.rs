//! What differs by PostgreSQL major, on the major the run is on
//! (`CLONESYNC_PG_MAJOR`; tools/test runs this file on 15, 16, 17 and 18):
//! the subscription's options, and what preflight reads and says about the
//! version's slot settings.

use clonesync::error::Error;
use clonesync::pipeline::{PipelineSpec, Scope, Waits};
use clonesync_tests::fixture::{replica_identity, server_major};
use clonesync_tests::{create_schema, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_subscription_gets_the_options_its_version_offers() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let major = server_major(&source).await;
    let (runtime, state, target) =
        clonesync_tests::pipeline::streaming_pipeline(&env, "opts").await;
    // substream is a boolean on 15 and a char ('f', 't', 'p') from 16.
    let row = target
        .query_one(
            "SELECT subbinary, substream::text FROM pg_subscription WHERE subname = 'clonesync_opts'",
            &[],
        )
        .await
        .unwrap();
    let binary: bool = row.get(0);
    let streaming: String = row.get(1);
    assert!(!binary, "binary transfer stays off on PostgreSQL {major}");
    let expected = if major >= 16 { "p" } else { "true" };
    assert_eq!(
        streaming, expected,
        "streaming on PostgreSQL {major}: parallel from 16, on before"
    );
    runtime.teardown(&state).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_explains_the_slot_settings_of_its_version() {
    let env = TestEnv::start_with_setting("max_slot_wal_keep_size", "64MB").await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let major = server_major(&source).await;
    let spec = PipelineSpec::with_defaults("slots", Scope::AllTables).unwrap();

    let report = env.preflight(&spec).await.unwrap();
    let limited = report
        .warnings
        .iter()
        .find(|w| w.starts_with("max_slot_wal_keep_size = 64 MB"))
        .unwrap_or_else(|| panic!("no word on the limit: {:?}", report.warnings));
    assert!(
        limited.contains("invalidates") && limited.contains("re-seeded"),
        "{limited}"
    );
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.contains("idle_replication_slot_timeout")),
        "{:?}",
        report.warnings
    );

    reload(&source, "max_slot_wal_keep_size", "-1", "-1").await;
    let report = env.preflight(&spec).await.unwrap();
    assert!(
        report.warnings.iter().any(
            |w| w.starts_with("max_slot_wal_keep_size = -1 (unlimited)") && w.contains("fills")
        ),
        "{:?}",
        report.warnings
    );

    let has_idle_timeout = source
        .query_opt(
            "SELECT 1 FROM pg_settings WHERE name = 'idle_replication_slot_timeout'",
            &[],
        )
        .await
        .unwrap()
        .is_some();
    assert_eq!(has_idle_timeout, major >= 18, "PostgreSQL {major}");
    if !has_idle_timeout {
        return;
    }
    // Shorter than the setup's share and clone waits: the unused slot
    // would be invalidated before the clone is attached.
    reload(&source, "idle_replication_slot_timeout", "60s", "60").await;
    let window = Waits::default().slot_idle_window().as_secs();
    match env.preflight(&spec).await {
        Err(Error::PreflightFailed { failures }) => {
            let failure = failures
                .iter()
                .find(|f| f.check == "idle_replication_slot_timeout")
                .unwrap_or_else(|| panic!("{failures:?}"));
            assert!(failure.detail.contains("= 60 s"), "{failure:?}");
            assert!(
                failure.detail.contains(&format!("{window} s")),
                "{failure:?}"
            );
        }
        other => panic!("preflight passed a 60 s idle timeout: {other:?}"),
    }
    // Longer: it passes, and says what a long pause would cost.
    reload(&source, "idle_replication_slot_timeout", "2d", "172800").await;
    let report = env.preflight(&spec).await.unwrap();
    assert!(
        report.warnings.iter().any(
            |w| w.starts_with("idle_replication_slot_timeout = 172800 s") && w.contains("2.0 days")
        ),
        "{:?}",
        report.warnings
    );
}

/// `ALTER SYSTEM` and reload; wait until this session sees `setting` (the
/// value in the setting's base unit, as pg_settings shows it).
async fn reload(client: &tokio_postgres::Client, name: &str, value: &str, setting: &str) {
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET {name} = {}",
            clonesync::pg::quote::literal(value)
        ))
        .await
        .unwrap();
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    for _ in 0..200 {
        let now: String = client
            .query_one("SELECT setting FROM pg_settings WHERE name = $1", &[&name])
            .await
            .unwrap()
            .get(0);
        if now == setting {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{name} = {value} was not applied");
}

/// PostgreSQL 18 refuses UPDATE and DELETE on a published table whose
/// replica identity holds a generated column the publication does not
/// publish, and `FULL` (what setup gives a table without a key) holds
/// every column. Preflight names such tables in scope, even with
/// `keyless_tables` consent, so setup never breaks production writes; a
/// key beside the generated column is fine. Before 18 none is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refuses_tables_whose_identity_holds_a_generated_column_on_18() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let major = server_major(&source).await;
    source
        .batch_execute(
            "CREATE SCHEMA gen; \
             CREATE TABLE gen.keyless (a int, b int GENERATED ALWAYS AS (a * 2) STORED); \
             CREATE TABLE gen.in_key (a int, b int GENERATED ALWAYS AS (a + 1) STORED PRIMARY KEY); \
             CREATE TABLE gen.beside_key (a int PRIMARY KEY, b int GENERATED ALWAYS AS (a * 2) STORED); \
             CREATE TABLE gen.full_by_hand (a int, b int GENERATED ALWAYS AS (a * 2) STORED); \
             ALTER TABLE gen.full_by_hand REPLICA IDENTITY FULL",
        )
        .await
        .unwrap();
    if major >= 18 {
        // 18's virtual generated columns are never published.
        source
            .batch_execute(
                "CREATE TABLE gen.virtual_keyless (a int, b int GENERATED ALWAYS AS (a * 2) VIRTUAL); \
                 CREATE TABLE gen.virtual_beside_key (a int PRIMARY KEY, b int GENERATED ALWAYS AS (a * 2) VIRTUAL)",
            )
            .await
            .unwrap();
    }
    let mut spec = PipelineSpec::with_defaults("gen", Scope::AllTables).unwrap();
    spec.keyless_full = true;
    let outcome = env.preflight(&spec).await;
    if major < 18 {
        let report = outcome.unwrap_or_else(|e| panic!("PostgreSQL {major}: {e}"));
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("\"gen\".\"keyless\"")),
            "{:?}",
            report.warnings
        );
        return;
    }
    let failures = match outcome {
        Err(Error::PreflightFailed { failures }) => failures,
        other => panic!("preflight passed tables 18 cannot update: {other:?}"),
    };
    let failure = failures
        .iter()
        .find(|f| f.check == "replica_identity_generated")
        .unwrap_or_else(|| panic!("{failures:?}"));
    for named in ["keyless", "in_key", "full_by_hand", "virtual_keyless"] {
        assert!(
            failure
                .detail
                .contains(&format!("\"gen\".\"{named}\" (column \"b\")")),
            "{named}: {failure:?}"
        );
    }
    assert!(!failure.detail.contains("beside_key"), "{failure:?}");
    assert!(failure.detail.starts_with("4 table(s)"), "{failure:?}");
    assert!(failure.hint.contains("primary key"), "{failure:?}");
    // What preflight says is what 18 does once a publication covers them.
    source
        .batch_execute(
            "INSERT INTO gen.in_key (a) VALUES (1); INSERT INTO gen.beside_key (a) VALUES (1); \
             CREATE PUBLICATION gen_probe FOR TABLES IN SCHEMA gen",
        )
        .await
        .unwrap();
    let refused = source
        .batch_execute("UPDATE gen.in_key SET a = 2")
        .await
        .unwrap_err();
    assert!(
        refused
            .as_db_error()
            .is_some_and(|e| e.detail().unwrap_or_default().contains("generated")),
        "{refused:?}"
    );
    source
        .batch_execute("UPDATE gen.beside_key SET a = 2; DROP PUBLICATION gen_probe")
        .await
        .unwrap();
}

/// After setup, a migration makes a table without a key: the capture
/// gives it `FULL` so the source can still update it. On 18, where a
/// generated column in it makes every identity fail, the migration goes
/// through as it would without clonesync (a WARNING), the table is left
/// as made, and the monitor (and so status and the alarm) names it until
/// a key over ordinary columns fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_made_later_that_the_source_cannot_update_is_named_until_it_has_a_key() {
    let env = TestEnv::start().await;
    let source = env.source_client().await;
    create_schema(&source).await;
    let major = server_major(&source).await;
    let (runtime, state, _target) =
        clonesync_tests::pipeline::streaming_pipeline(&env, "genlate").await;
    let record = runtime
        .registry()
        .get_pipeline(&"genlate".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    source
        .batch_execute(
            "CREATE TABLE public.late_gen (a int NOT NULL, b int GENERATED ALWAYS AS (a * 2) STORED); \
             INSERT INTO public.late_gen (a) VALUES (1), (2); \
             CREATE TABLE public.late_plain (a int, b int); \
             INSERT INTO public.late_plain VALUES (1, 1)",
        )
        .await
        .expect("the migration goes through");
    assert_eq!(replica_identity(&source, "public.late_plain").await, "f");
    source
        .batch_execute("UPDATE public.late_plain SET b = 2")
        .await
        .expect("a keyless table made later stays writable");
    let unwritable = |report: &clonesync::monitor::MonitorReport| -> Vec<String> {
        report
            .targets
            .iter()
            .filter_map(|t| t.tables_unwritable.clone())
            .flatten()
            .collect()
    };
    let report = clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&record)).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    if major >= 18 {
        // FULL would not help: the table is left as it was made.
        assert_eq!(replica_identity(&source, "public.late_gen").await, "d");
        let named = unwritable(&report);
        assert_eq!(named.len(), 1, "{named:?}");
        assert!(
            named[0].starts_with("public.late_gen: ") && named[0].contains("\"b\""),
            "{named:?}"
        );
        assert!(source
            .batch_execute("UPDATE public.late_gen SET a = 3")
            .await
            .is_err());
        source
            .batch_execute("ALTER TABLE public.late_gen ADD PRIMARY KEY (a)")
            .await
            .unwrap();
    } else {
        assert_eq!(replica_identity(&source, "public.late_gen").await, "f");
        assert!(unwritable(&report).is_empty(), "{:?}", unwritable(&report));
    }
    source
        .batch_execute("UPDATE public.late_gen SET a = a + 10")
        .await
        .expect("writable with a key");
    let report = clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&record)).await;
    assert!(unwritable(&report).is_empty(), "{:?}", unwritable(&report));
    runtime.teardown(&state).await.unwrap();
}
