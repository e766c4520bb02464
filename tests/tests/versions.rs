//! What differs by PostgreSQL major, on the major the run is on
//! (`CLONESYNC_PG_MAJOR`; tools/test runs this file on 15, 16, 17 and 18):
//! the subscription's options, and what preflight reads and says about the
//! version's slot settings.

use clonesync::error::Error;
use clonesync::pipeline::{PipelineSpec, Scope, Waits};
use clonesync_tests::fixture::server_major;
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
