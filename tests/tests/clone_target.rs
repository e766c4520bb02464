//! The edge of the handoff, made deterministic: the WAL record at the
//! clone's start LSN is a COMMIT. The clone must not contain that
//! transaction (recovery stops *before* the target), and the subscription
//! must apply it exactly once (decoding sends commits starting at or after
//! the origin). With `recovery_target_inclusive = true` the clone would
//! hold it and the subscription would apply it again.

use clonesync::pg::Lsn;
use clonesync::pipeline::PipelineSpec;
use clonesync::pipeline::Scope;
use clonesync::steps::{clone, prepare_source};
use clonesync_tests::fixture::connect;
use clonesync_tests::pipeline::attach;
use clonesync_tests::{compare_tables, create_schema, tables_in, wait_for_marker, TestEnv};
use postgres_types::PgLsn;
use std::cell::Cell;
use std::time::Duration;
use tokio_postgres::Client;

const MARK_ID: i64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_at_the_clone_lsn_lands_exactly_once() {
    let env = TestEnv::start().await;
    let mut source = env.source_client().await;
    create_schema(&source).await;
    source
        .batch_execute("CREATE EXTENSION pg_walinspect SCHEMA public")
        .await
        .expect("pg_walinspect ships with the server");
    let spec = PipelineSpec::with_defaults("edge", Scope::AllTables).unwrap();
    env.preflight(&spec).await.unwrap();
    let prepared = prepare_source::run(&mut source, &spec).await.unwrap();

    let writer = env.source_client().await;
    let last_id = Cell::new(0i64);
    let clone_info = env
        .plane
        .create_clone_at(&clone::clone_id(&spec), async |src: &Client| {
            Ok(commit_at_known_lsn(src, &writer, &last_id).await)
        })
        .await
        .expect("clone at a commit record");
    let id = last_id.get();
    let target = connect(&env.plane.clone_login(&clone_info)).await;

    // Recovery stopped before the commit: the clone lacks the transaction.
    assert_eq!(
        count_mark(&target, id).await,
        0,
        "clone contains the transaction committed at its start LSN"
    );
    assert_eq!(
        count_mark(&target, MARK_ID).await,
        1,
        "clone lacks the transaction before it"
    );

    attach(
        &env.plane,
        &source,
        &target,
        &clone_info,
        &spec,
        prepared.consistent_lsn,
        &env.source_endpoint().conninfo(),
    )
    .await;
    wait_for_marker(&source, &target, Duration::from_secs(60))
        .await
        .unwrap();

    // The subscription applied it, once.
    assert_eq!(count_mark(&target, id).await, 1);
    let tables = tables_in(&source, &["public", "Sales Schema"]).await;
    let (_, differences) = compare_tables(&source, &target, &tables).await;
    assert!(differences.is_empty(), "{differences:#?}");
}

/// Commit a transaction whose COMMIT record starts exactly at the LSN
/// returned; retries when other WAL (a checkpoint, a running-xacts record)
/// slipped in between.
async fn commit_at_known_lsn(source: &Client, writer: &Client, last_id: &Cell<i64>) -> Lsn {
    // One committed just before, which the clone must contain.
    writer
        .batch_execute(&format!(
            "INSERT INTO public.accounts (id, owner, balance) VALUES ({MARK_ID}, 'before the clone LSN', 1)"
        ))
        .await
        .unwrap();
    for attempt in 1..50 {
        let id = MARK_ID + attempt;
        writer
            .batch_execute(&format!(
                "BEGIN; INSERT INTO public.accounts (id, owner, balance) VALUES ({id}, 'at the clone LSN', 42); \
                 UPDATE public.accounts SET balance = balance + 1 WHERE id = 1"
            ))
            .await
            .unwrap();
        let insert_lsn: PgLsn = source
            .query_one("SELECT pg_current_wal_insert_lsn()", &[])
            .await
            .unwrap()
            .get(0);
        writer.batch_execute("COMMIT").await.unwrap();
        let row = source
            .query_one(
                "SELECT start_lsn, record_type FROM public.pg_get_wal_record_info($1)",
                &[&insert_lsn],
            )
            .await
            .unwrap();
        let (start, kind): (PgLsn, String) = (row.get(0), row.get(1));
        last_id.set(id);
        if start == insert_lsn && kind == "COMMIT" {
            return Lsn::from(insert_lsn);
        }
    }
    panic!("could not place a COMMIT record at a known LSN");
}

async fn count_mark(client: &Client, id: i64) -> i64 {
    client
        .query_one("SELECT count(*) FROM public.accounts WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}
