//! The handoff invariant: under a concurrent write load that runs from
//! before the source is prepared until after the subscription is enabled,
//! the clone plus the subscription end up equal to the source, table by
//! table, by content — nothing lost, nothing applied twice.

use clonesync::pg::{subscription, PgName};
use clonesync::pipeline::PipelineSpec;
use clonesync::pipeline::Scope;
use clonesync::steps::{clone, prepare_source};
use clonesync_local::clone::current_wal_lsn;
use clonesync_tests::fixture::connect;
use clonesync_tests::pipeline::attach;
use clonesync_tests::{
    compare_tables, create_schema, tables_in, wait_for_marker, TestEnv, Workload,
};
use std::time::Duration;
use tokio_postgres::Client;

const SCHEMAS: &[&str] = &["public", "Sales Schema"];

async fn handoff_under_load(seed: u64, scope_kind: &str) {
    let env = TestEnv::start().await;
    let mut source = env.source_client().await;
    create_schema(&source).await;
    let tables = tables_in(&source, SCHEMAS).await;
    let scope = match scope_kind {
        "all" => Scope::AllTables,
        "schemas" => {
            Scope::schemas(SCHEMAS.iter().map(|s| PgName::new(*s).unwrap()).collect()).unwrap()
        }
        _ => Scope::tables(tables.clone()).unwrap(),
    };
    let spec = PipelineSpec::with_defaults(&format!("handoff_{scope_kind}"), scope).unwrap();

    // Every phase below waits for the load to commit more transactions, so
    // writes overlap each boundary of the handoff however slow the machine.
    let load = Workload::start(env.source_endpoint(), 3, seed, Duration::ZERO);
    let before_prepare = load.wait_for_more(200).await;

    env.preflight(&spec).await.expect("preflight");
    let prepared = prepare_source::run(&mut source, &spec)
        .await
        .expect("prepare source");
    let before_clone = load.wait_for_more(200).await;

    // The clone step's own recipe, with writes guaranteed between the end
    // of the copy and the moment its start LSN is read: those must arrive
    // through WAL replay, and the ones after it through the subscription.
    let mut at_target = 0;
    let clone_info = env
        .plane
        .create_clone_at(&clone::clone_id(&spec), async |src: &Client| {
            at_target = load.wait_for_more(200).await;
            current_wal_lsn(src).await
        })
        .await
        .expect("clone");
    let target = connect(&env.plane.clone_login(&clone_info)).await;
    let attached = attach(
        &env.plane,
        &source,
        &target,
        &clone_info,
        &spec,
        prepared.consistent_lsn,
        &env.source_endpoint().conninfo(),
    )
    .await;
    let at_enable = load.committed();
    load.wait_for_more(1000).await;
    let stats = load.stop().await;
    assert!(before_prepare < before_clone && before_clone < at_target && at_target <= at_enable);
    assert!(stats.committed >= at_enable + 1000);

    wait_for_marker(&source, &target, Duration::from_secs(60))
        .await
        .expect("catch up");
    let (states, differences) = compare_tables(&source, &target, &tables).await;
    assert_eq!(states.len(), 8, "every table compared: {states:?}");
    assert!(
        differences.is_empty(),
        "tables differ after catch-up (source, target): {differences:#?}\nload: {stats:?}"
    );
    // Nothing empty was compared by accident.
    assert!(states.iter().all(|s| s.rows > 0), "{states:?}");

    assert_eq!(
        subscription::apply_error_count(&target, spec.subscription.as_str())
            .await
            .unwrap(),
        0
    );
    let clone_server = env
        .plane
        .clone_server(&clone_info.clone_id)
        .unwrap()
        .unwrap();
    let log = clone_server.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR:")).collect();
    assert!(errors.is_empty(), "errors in the clone's log: {errors:#?}");
    assert!(
        log.contains("logical replication apply worker for subscription"),
        "the apply worker never started:\n{log}"
    );
    eprintln!(
        "seed {seed} scope {scope_kind}: {} transactions committed ({} before the slot), clone LSN {}, tables {:?}",
        stats.committed,
        before_prepare,
        attached.range.clone_lsn,
        states.iter().map(|s| (s.table.as_str(), s.rows)).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handoff_all_tables_under_load() {
    handoff_under_load(1, "all").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handoff_schema_list_under_load() {
    handoff_under_load(2, "schemas").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handoff_table_list_under_load() {
    handoff_under_load(3, "tables").await;
}
