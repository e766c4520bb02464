//! Schema changes keep flowing: a migration applied on the source while
//! rows are written reaches the target in commit order, new tables are
//! picked up by the refresh, nothing is silently dropped. Real servers, the
//! real setup and teardown state machines under moto's engine, a write
//! load from before setup until after the last change; every table in
//! scope compared by content and by shape at the end.

use clonesync::pg::ddl;
use clonesync::pg::{Endpoint, Lsn};
use clonesync::pipeline::{Phase, PipelineRecord};
use clonesync::steps::drift::Difference;
use clonesync::workflow::{schema, State};
use clonesync_local::runtime::{request, RunOutcome};
use clonesync_local::LocalRuntime;
use clonesync_tests::fixture::{connect, replica_identity, DB};
use clonesync_tests::pipeline::{short_waits, slots_and_publications, teardown_with_clone};
use clonesync_tests::{compare_tables, create_schema, tables_in, TestEnv, Workload};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const SCHEMAS: &[&str] = &["public", "Sales Schema", "reporting"];

/// Tables the migration reshapes, next to the workload's own.
const MIGRATION_TABLES: &str = "
    CREATE TYPE public.mood AS ENUM ('happy', 'sad');
    CREATE TABLE public.mig_orders (
        id bigserial PRIMARY KEY, qty int NOT NULL DEFAULT 1, note text, legacy text, price int);
    CREATE TABLE public.mig_people (id bigserial PRIMARY KEY, name text NOT NULL, m public.mood);
    CREATE TABLE public.mig_measure (id bigint NOT NULL, k int NOT NULL, v int, PRIMARY KEY (id, k))
        PARTITION BY RANGE (k);
    CREATE TABLE public.mig_measure_p0 PARTITION OF public.mig_measure FOR VALUES FROM (0) TO (100);
    INSERT INTO public.mig_orders (qty, note, legacy, price)
        SELECT g, 'seed', 'old' || g, g * 10 FROM generate_series(1, 200) g;
    INSERT INTO public.mig_people (name, m) SELECT 'p' || g, 'happy' FROM generate_series(1, 50) g;
";

/// How far the migration has got, for the load to write where it may.
const NEW_TABLE: u8 = 1;
const NEW_PARTITION: u8 = 2;

/// A load on the migration's tables that keeps working through every step
/// of the migration: it names only columns the migration never renames or
/// drops, and writes to new objects once they exist.
struct MigrationLoad {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl MigrationLoad {
    fn start(endpoint: Endpoint, stage: Arc<AtomicU8>) -> MigrationLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), committed.clone());
        let task = tokio::spawn(async move {
            let client = connect(&endpoint).await;
            let mut errors = Vec::new();
            let mut n: i64 = 0;
            while !s.load(Ordering::SeqCst) {
                n += 1;
                let stage = stage.load(Ordering::SeqCst);
                let k = if stage >= NEW_PARTITION {
                    n % 200
                } else {
                    n % 100
                };
                let mut batch = vec![
                    "INSERT INTO public.mig_orders (qty, note) VALUES (1, 'load')".to_string(),
                    "UPDATE public.mig_orders SET qty = qty + 1 WHERE id = (SELECT max(id) - 5 FROM public.mig_orders)".to_string(),
                    format!("INSERT INTO public.mig_measure (id, k, v) VALUES ({n}, {k}, {n})"),
                    "INSERT INTO public.mig_people (name) VALUES ('load')".to_string(),
                ];
                if n % 5 == 0 {
                    batch.push(
                        "DELETE FROM public.mig_orders WHERE id = (SELECT min(id) FROM public.mig_orders)".into(),
                    );
                }
                if stage >= NEW_TABLE {
                    batch.push(format!(
                        "INSERT INTO public.mig_new (id, label) VALUES ({}, 'load')",
                        100_000 + n
                    ));
                }
                for statement in batch {
                    if let Err(e) = client.batch_execute(&statement).await {
                        errors.push(format!("{statement}: {e:?}"));
                    }
                }
                c.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            errors
        });
        MigrationLoad {
            stop,
            committed,
            task,
        }
    }

    async fn wait_for_more(&self, more: u64) {
        let until = self.committed.load(Ordering::SeqCst) + more;
        let started = Instant::now();
        while self.committed.load(Ordering::SeqCst) < until {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the migration load stalled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let errors = self.task.await.expect("the load task");
        (self.committed.load(Ordering::SeqCst), errors)
    }
}

/// A source with the workload's tables, and the migration's when asked.
async fn source_env(migration_tables: bool) -> TestEnv {
    let env = TestEnv::start().await;
    let admin = env.source_client().await;
    create_schema(&admin).await;
    if migration_tables {
        admin.batch_execute(MIGRATION_TABLES).await.unwrap();
    }
    env
}

async fn runtime(env: &TestEnv) -> LocalRuntime {
    LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("local runtime")
}

/// Execution names are unique per state machine: a pipeline set up twice
/// runs under two names.
static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

async fn setup(runtime: &LocalRuntime, id: &str, scope: serde_json::Value) -> State {
    let input = request(id, scope, DB, short_waits());
    let outcome: RunOutcome = tokio::time::timeout(
        Duration::from_secs(300),
        runtime.run(
            &format!("setup-{id}-{}", RUNS.fetch_add(1, Ordering::SeqCst)),
            &input,
            &mut |_| {},
        ),
    )
    .await
    .expect("setup ended within 5 minutes")
    .expect("run");
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    outcome.state().expect("a state")
}

async fn record_of(runtime: &LocalRuntime, id: &str) -> PipelineRecord {
    let record = runtime
        .registry()
        .get_pipeline(&id.parse().unwrap())
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(record.phase, Phase::Streaming);
    record
}

fn clone_client_endpoint(env: &TestEnv, state: &State) -> Endpoint {
    env.plane.clone_login(state.clone_info().unwrap())
}

/// Whether the slot has confirmed the source's WAL up to `lsn`.
async fn confirmed_up_to(source: &Client, slot: &str, lsn: Lsn) -> bool {
    let info = clonesync::pg::slot::slot_info(source, slot)
        .await
        .unwrap()
        .expect("the slot");
    info.confirmed_flush_lsn.unwrap_or(Lsn::from(0u64)) >= lsn
}

/// Until the slot has confirmed the source's WAL position as of now.
async fn wait_caught_up(source: &Client, slot: &str) {
    let target = clonesync::pg::wal::current_lsn(source).await.unwrap();
    let started = Instant::now();
    loop {
        if confirmed_up_to(source, slot, target).await {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "slot {slot} still behind {target}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Refresh until no table of the subscription is still being copied and
/// none is missing; returns every table the refreshes added.
async fn refresh_until_synced(env: &TestEnv, record: &PipelineRecord) -> Vec<String> {
    let started = Instant::now();
    let mut added = Vec::new();
    loop {
        let report = schema::refresh_pipeline(&env.plane, record)
            .await
            .expect("refresh");
        let (_, refreshed) = &report.triples[0];
        added.extend(refreshed.added.iter().cloned());
        assert!(
            refreshed.missing_on_target.is_empty(),
            "published tables missing on the target: {:?} (pending: {:?})",
            refreshed.missing_on_target,
            report.schema_changes
        );
        if refreshed.added.is_empty()
            && refreshed.syncing.is_empty()
            && refreshed.waiting_for_stream.is_empty()
        {
            return added;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "tables still syncing: {:?}",
            refreshed.syncing
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The clone's server log lines that are errors (a FATAL is a process
/// ending, such as the clone's WAL receiver at promotion).
fn clone_log_errors(env: &TestEnv) -> Vec<String> {
    env.clone_dirs()
        .iter()
        .filter_map(|dir| std::fs::read_to_string(dir.join("server.log")).ok())
        .flat_map(|text| {
            text.lines()
                .filter(|l| l.contains("ERROR:"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn assert_equal_by_content(source: &Client, clone: &Client) -> usize {
    let tables = tables_in(source, SCHEMAS).await;
    let (states, differences) = compare_tables(source, clone, &tables).await;
    assert!(differences.is_empty(), "tables differ: {differences:#?}");
    states.len()
}

/// Once the slot has confirmed the source's position: every table equal by
/// content, the same shapes, and no schema change pending.
async fn caught_up_equal_and_nothing_pending(source: &Client, clone: &Client, slot: &str) {
    wait_caught_up(source, slot).await;
    assert_equal_by_content(source, clone).await;
    let differences = drift(source, clone, &clonesync::pipeline::Scope::AllTables).await;
    assert!(differences.is_empty(), "{differences:#?}");
    let summary = ddl::applied_summary(clone).await.unwrap();
    assert!(summary.pending.is_empty(), "{:?}", summary.pending);
}

async fn drift(
    source: &Client,
    clone: &Client,
    scope: &clonesync::pipeline::Scope,
) -> Vec<Difference> {
    clonesync::steps::drift::run(source, clone, scope)
        .await
        .expect("drift report")
}

/// Whether schema clonesync is there, and how many of the capture's event
/// triggers (the copy's guard on 15, `clonesync_replica_trigger_guard`, is
/// counted apart, by [`guard_enabled`]).
async fn capture_objects(client: &Client) -> (bool, i64) {
    let row = client
        .query_one(
            "SELECT to_regnamespace('clonesync') IS NOT NULL, \
                    (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'clonesync%' \
                       AND evtname <> 'clonesync_replica_trigger_guard')",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The copy's guard against ALWAYS/REPLICA triggers: `Some(enabled)` where
/// it exists.
async fn guard_enabled(client: &Client) -> Option<bool> {
    client
        .query_opt(
            "SELECT evtenabled <> 'D' FROM pg_event_trigger WHERE evtname = 'clonesync_replica_trigger_guard'",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_migration_under_load_reaches_the_target_in_order_and_the_copy_stays_equal() {
    let env = source_env(true).await;
    let stage = Arc::new(AtomicU8::new(0));
    let workload = Workload::start(env.source_endpoint(), 2, 15, Duration::from_millis(5));
    let migration_load = MigrationLoad::start(env.source_endpoint(), stage.clone());
    workload.wait_for_more(50).await;
    migration_load.wait_for_more(50).await;

    let runtime = runtime(&env).await;
    let state = setup(&runtime, "schema", json!({"kind": "all_tables"})).await;
    assert!(state.pipeline.schema_changes, "on by default");
    let record = record_of(&runtime, "schema").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    assert!(ddl::apply_installed(&clone).await.unwrap());
    assert_eq!(
        capture_objects(&clone).await,
        (true, 2),
        "the clone keeps the inherited event triggers, disabled"
    );
    let enabled: i64 = clone
        .query_one(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'clonesync%' AND evtenabled <> 'D' \
               AND evtname <> 'clonesync_replica_trigger_guard'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(enabled, 0, "local DDL on the copy is not captured");
    // On 15 the copy guards against triggers that would fire during apply
    // as superuser; 16+ needs no guard (run_as_owner = false).
    let major = clonesync_tests::fixture::server_major(&clone).await;
    assert_eq!(guard_enabled(&clone).await, (major < 16).then_some(true));
    migration_load.wait_for_more(100).await;

    // The migration, one step after the other while both loads write.
    let source = env.source_client().await;
    source
        .batch_execute(
            "BEGIN; CREATE TABLE public.mig_new (id int PRIMARY KEY, label text); \
             INSERT INTO public.mig_new SELECT g, 'x' || g FROM generate_series(1, 500) g; COMMIT",
        )
        .await
        .unwrap();
    stage.store(NEW_TABLE, Ordering::SeqCst);
    migration_load.wait_for_more(50).await;
    source
        .batch_execute(
            "ALTER TABLE public.mig_orders ADD COLUMN status text NOT NULL DEFAULT 'new'",
        )
        .await
        .unwrap();
    source
        .batch_execute(
            "INSERT INTO public.mig_orders (qty, note, status) SELECT 5, 'with status', 'shipped' FROM generate_series(1, 20)",
        )
        .await
        .unwrap();
    source
        .batch_execute("ALTER TABLE public.mig_orders RENAME COLUMN legacy TO legacy_note")
        .await
        .unwrap();
    source
        .batch_execute("UPDATE public.mig_orders SET legacy_note = 'renamed' WHERE id % 7 = 0")
        .await
        .unwrap();
    migration_load.wait_for_more(30).await;
    source
        .batch_execute("ALTER TABLE public.mig_orders DROP COLUMN price")
        .await
        .unwrap();
    source
        .batch_execute("CREATE INDEX CONCURRENTLY mig_orders_note ON public.mig_orders (note)")
        .await
        .unwrap();
    source
        .batch_execute(
            "CREATE TABLE public.mig_measure_p1 PARTITION OF public.mig_measure FOR VALUES FROM (100) TO (200)",
        )
        .await
        .unwrap();
    source
        .batch_execute("INSERT INTO public.mig_measure SELECT -g, 100 + g % 100, g FROM generate_series(1, 300) g")
        .await
        .unwrap();
    stage.store(NEW_PARTITION, Ordering::SeqCst);
    source
        .batch_execute("ALTER TYPE public.mood ADD VALUE 'angry'")
        .await
        .unwrap();
    source
        .batch_execute("INSERT INTO public.mig_people (name, m) VALUES ('furious', 'angry')")
        .await
        .unwrap();
    source
        .batch_execute(
            "CREATE SCHEMA reporting; CREATE TABLE reporting.daily (day date PRIMARY KEY, total bigint NOT NULL); \
             INSERT INTO reporting.daily SELECT current_date - g, g FROM generate_series(1, 30) g",
        )
        .await
        .unwrap();
    migration_load.wait_for_more(30).await;
    source
        .batch_execute("ALTER TABLE public.mig_orders ALTER COLUMN qty TYPE bigint")
        .await
        .unwrap();
    source
        .batch_execute("CREATE TABLE public.mig_tmp (a int PRIMARY KEY)")
        .await
        .unwrap();
    source
        .batch_execute("INSERT INTO public.mig_tmp SELECT generate_series(1, 10)")
        .await
        .unwrap();
    source
        .batch_execute("DROP TABLE public.mig_tmp")
        .await
        .unwrap();
    // DDL and DML in one simple query: the INSERT must land once.
    source
        .batch_execute(
            "ALTER TABLE public.mig_people ADD COLUMN score int; \
             INSERT INTO public.mig_people (name, m, score) VALUES ('combo', 'happy', 42)",
        )
        .await
        .unwrap();
    // A command only its text could apply, run where its text is not the
    // client's: truly not applied, so pending.
    source
        .batch_execute(
            "DO $$ BEGIN EXECUTE 'COMMENT ON TABLE public.mig_orders IS ''orders, migrated'''; END $$",
        )
        .await
        .unwrap();
    migration_load.wait_for_more(100).await;
    workload.wait_for_more(50).await;
    let (load_commits, load_errors) = migration_load.stop().await;
    let stats = workload.stop().await;
    assert!(load_errors.is_empty(), "the load failed: {load_errors:#?}");

    wait_caught_up(&source, state.pipeline.slot.as_str()).await;
    let added = refresh_until_synced(&env, &record).await;
    for table in [
        "\"public\".\"mig_new\"",
        "\"public\".\"mig_measure_p1\"",
        "\"reporting\".\"daily\"",
    ] {
        assert!(
            added.iter().any(|a| a == table),
            "{table} was not added by the refresh: {added:?}"
        );
    }
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;

    let compared = assert_equal_by_content(&source, &clone).await;
    assert!(compared >= 10, "only {compared} tables compared");
    let combo: i64 = clone
        .query_one(
            "SELECT count(*) FROM public.mig_people WHERE name = 'combo'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(combo, 1, "the INSERT of the DDL+DML string landed once");
    let differences = drift(&source, &clone, &clonesync::pipeline::Scope::AllTables).await;
    assert!(
        differences.is_empty(),
        "the shapes differ: {differences:#?}"
    );
    let gone: bool = clone
        .query_one("SELECT to_regclass('public.mig_tmp') IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(gone, "the dropped table is dropped on the target");

    // Only the command that was truly not applied is pending.
    let summary = ddl::applied_summary(&clone).await.unwrap();
    assert_eq!(summary.pending.len(), 1, "{:#?}", summary.pending);
    assert_eq!(summary.pending[0].command_tag, "COMMENT");
    // Every statement of the migration but the DO block, one row each.
    assert_eq!(summary.applied, 13, "{summary:?}");
    let comment: Option<String> = clone
        .query_one(
            "SELECT obj_description('public.mig_orders'::regclass, 'pg_class')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(comment, None, "the pending change was indeed not applied");
    let lag =
        clonesync::pg::lag::subscription_lags(&clone, &[state.pipeline.subscription.as_str()])
            .await
            .unwrap();
    assert_eq!(lag[0].apply_error_count.unwrap_or(0), 0, "{lag:?}");
    assert_eq!(lag[0].sync_error_count.unwrap_or(0), 0, "{lag:?}");
    assert_eq!(lag[0].conflicts_total().unwrap_or(0), 0, "{lag:?}");
    let errors = clone_log_errors(&env);
    assert!(errors.is_empty(), "errors in the clone's log: {errors:#?}");

    // The monitor reports the pending change.
    let report = clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&record)).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.targets[0].schema_changes_pending, Some(1));
    let docs: Vec<serde_json::Value> = clonesync::monitor::emf::lines(&report, 1)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mine = docs
        .iter()
        .find(|d| d["Pipeline"] == "schema" && d.get("Slot").is_none())
        .expect("the pipeline's document");
    assert_eq!(mine["SchemaChangesPending"], 1.0, "{mine}");
    assert!(
        load_commits > 300 && stats.committed > 100,
        "{load_commits} {stats:?}"
    );

    // Teardown takes the capture with the last pipeline.
    teardown_with_clone(&runtime, "schema").await;
    let after = env.source_client().await;
    assert_eq!(capture_objects(&after).await, (false, 0));
    let (slots, publications) = slots_and_publications(&after).await;
    assert!(
        slots.is_empty() && publications.is_empty(),
        "{slots:?} {publications:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_outside_a_schema_scope_are_skipped_and_new_tables_inside_it_are_copied() {
    let env = TestEnv::start().await;
    let admin = env.source_client().await;
    create_schema(&admin).await;
    admin
        .batch_execute(
            "CREATE SCHEMA other; CREATE TABLE other.o (id int PRIMARY KEY); \
             INSERT INTO other.o SELECT generate_series(1, 10)",
        )
        .await
        .unwrap();
    let workload = Workload::start(env.source_endpoint(), 2, 21, Duration::from_millis(5));
    workload.wait_for_more(30).await;
    let runtime = runtime(&env).await;
    let scope = json!({"kind": "schemas", "schemas": ["public", "Sales Schema"]});
    let state = setup(&runtime, "scoped", scope).await;
    let record = record_of(&runtime, "scoped").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let source = env.source_client().await;
    source
        .batch_execute(
            "CREATE TABLE other.o2 (id int); ALTER TABLE other.o ADD COLUMN x int; \
             CREATE TABLE public.fresh (id int PRIMARY KEY, v text); \
             INSERT INTO public.fresh SELECT g, 'v' || g FROM generate_series(1, 1000) g",
        )
        .await
        .unwrap();
    // Rows written between the table's creation and the refresh.
    for i in 0..20 {
        source
            .batch_execute(&format!(
                "INSERT INTO public.fresh VALUES ({}, 'between'); UPDATE public.fresh SET v = 'changed' WHERE id = {}",
                2000 + i,
                i + 1
            ))
            .await
            .unwrap();
    }
    workload.wait_for_more(50).await;
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;
    let added = refresh_until_synced(&env, &record).await;
    assert_eq!(added, vec!["\"public\".\"fresh\"".to_string()]);
    // Refreshing again changes nothing.
    let again = schema::refresh_pipeline(&env.plane, &record).await.unwrap();
    assert!(again.triples[0].1.added.is_empty(), "{again:?}");
    source
        .batch_execute("INSERT INTO public.fresh VALUES (5000, 'after the refresh')")
        .await
        .unwrap();
    workload.stop().await;
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;

    let tables = tables_in(&source, &["public", "Sales Schema"]).await;
    let (states, differences) = compare_tables(&source, &clone, &tables).await;
    assert!(differences.is_empty(), "{differences:#?}");
    assert!(states.len() >= 8);
    let fresh: i64 = clone
        .query_one("SELECT count(*) FROM public.fresh", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(fresh, 1021, "every row of the new table, none twice");
    let other: (bool, bool) = {
        let row = clone
            .query_one(
                "SELECT to_regclass('other.o2') IS NULL, \
                   NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'other.o'::regclass AND attname = 'x')",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(other, (true, true), "nothing outside the scope was applied");
    let summary = ddl::applied_summary(&clone).await.unwrap();
    assert!(summary.pending.is_empty(), "{:?}", summary.pending);
    assert_eq!(summary.out_of_scope, 2, "other.o2 and other.o: {summary:?}");
    let scope = clonesync::pipeline::Scope::schemas(vec![
        clonesync::pg::PgName::new("public").unwrap(),
        clonesync::pg::PgName::new("Sales Schema").unwrap(),
    ])
    .unwrap();
    assert!(drift(&source, &clone, &scope).await.is_empty());
    // A command wholly outside the scope is recorded as such.
    source
        .batch_execute("ALTER TABLE other.o ADD COLUMN y int")
        .await
        .unwrap();
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;
    let summary = ddl::applied_summary(&clone).await.unwrap();
    assert_eq!(summary.out_of_scope, 3, "{summary:?}");
    teardown_with_clone(&runtime, "scoped").await;
    assert_eq!(
        capture_objects(&env.source_client().await).await,
        (false, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_apply_worker_killed_in_a_migration_and_a_source_crash_apply_each_change_once() {
    let mut env = source_env(true).await;
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "faults", json!({"kind": "all_tables"})).await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let source = env.source_client().await;
    // One large transaction: a schema change in the middle of 60,000 rows,
    // so the apply worker is busy with it when it is killed.
    source
        .batch_execute(
            "BEGIN; \
             INSERT INTO public.mig_orders (qty, note) SELECT g, 'before' FROM generate_series(1, 30000) g; \
             ALTER TABLE public.mig_orders ADD COLUMN batch int DEFAULT 7; \
             INSERT INTO public.mig_orders (qty, note, batch) SELECT g, 'after', g FROM generate_series(1, 30000) g; \
             COMMIT",
        )
        .await
        .unwrap();
    let killed: i64 = clone
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_subscription WHERE pid IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "an apply worker was running");
    // Then the source dies mid-stream and comes back; more changes follow.
    source
        .batch_execute("ALTER TABLE public.mig_people ADD COLUMN nick text; INSERT INTO public.mig_people (name, nick) VALUES ('n', 'nick')")
        .await
        .unwrap();
    drop(source);
    env.source.stop_now();
    env.source.start().await.expect("the source starts again");
    let source = env.source_client().await;
    source
        .batch_execute("ALTER TABLE public.mig_orders RENAME COLUMN batch TO batch_no")
        .await
        .unwrap();
    source
        .batch_execute(
            "INSERT INTO public.mig_orders (qty, note, batch_no) VALUES (1, 'renamed', 1)",
        )
        .await
        .unwrap();
    caught_up_equal_and_nothing_pending(&source, &clone, state.pipeline.slot.as_str()).await;
    let queued = ddl::queued_commands(&source).await.unwrap();
    let applied: i64 = clone
        .query_one("SELECT count(*) FROM clonesync.ddl_applied", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        applied as usize,
        queued.len(),
        "each queued change applied once: {queued:?}"
    );
    runtime.teardown(&state).await.unwrap();
}

/// `CREATE TABLE AS` writes its rows before the command ends, so they reach
/// the target before the queue row that would create the table: apply stops
/// on them ("target relation does not exist") until the refresh creates the
/// table from the source's definition; then it goes on and the table is
/// copied, nothing lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_table_as_is_healed_by_the_refresh() {
    let env = source_env(true).await;
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "ctas", json!({"kind": "all_tables"})).await;
    let record = record_of(&runtime, "ctas").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let source = env.source_client().await;
    source
        .batch_execute(
            "CREATE TABLE public.mig_summary AS SELECT qty, count(*) AS n FROM public.mig_orders GROUP BY qty; \
             ALTER TABLE public.mig_summary ADD PRIMARY KEY (qty)",
        )
        .await
        .unwrap();
    source
        .batch_execute("INSERT INTO public.mig_orders (qty, note) VALUES (7, 'after the CTAS')")
        .await
        .unwrap();
    let (created, added) = refresh_until_settled(&env, &record).await;
    assert_eq!(created, vec!["\"public\".\"mig_summary\"".to_string()]);
    assert_eq!(added, created, "the table joined the subscription");
    caught_up_equal_and_nothing_pending(&source, &clone, state.pipeline.slot.as_str()).await;
    runtime.teardown(&state).await.unwrap();
}

/// Refresh until nothing is being made, added, copied or waited for, and
/// nothing is missing; returns the tables created on the copy and the
/// tables added to the subscription on the way.
async fn refresh_until_settled(
    env: &TestEnv,
    record: &PipelineRecord,
) -> (Vec<String>, Vec<String>) {
    let started = Instant::now();
    let (mut created, mut added) = (Vec::new(), Vec::new());
    loop {
        let report = schema::refresh_pipeline(&env.plane, record).await.unwrap();
        let refreshed = &report.triples[0].1;
        created.extend(refreshed.created_on_target.iter().cloned());
        added.extend(refreshed.added.iter().cloned());
        if refreshed.created_on_target.is_empty()
            && refreshed.added.is_empty()
            && refreshed.syncing.is_empty()
            && refreshed.waiting_for_stream.is_empty()
            && refreshed.missing_on_target.is_empty()
        {
            return (created, added);
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{report:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Tables made by `CREATE TABLE AS` / `SELECT INTO` and changed or dropped
/// before any refresh, under a write load. Their rows stop apply until the
/// table exists, and on main before no refresh could make one the source
/// no longer has (apply stopped for good), nor one whose columns changed
/// since (made in its new shape, "missing replicated column"). Now each is
/// made from the definition its command left, apply goes on, the later
/// commands replay (the drop drops it, the column changes change it), the
/// surviving table is copied whole, and every table is equal by content.
/// A table made by `EXPLAIN ANALYZE CREATE TABLE AS` (no event trigger
/// sees it) and dropped is known only to the stream: read from the slot
/// while apply is stopped, it is made as a stand-in, and its replayed drop
/// removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tables_made_with_their_rows_and_dropped_or_changed_before_the_refresh_never_stop_apply() {
    let env = source_env(true).await;
    let workload = Workload::start(env.source_endpoint(), 2, 27, Duration::from_millis(5));
    workload.wait_for_more(30).await;
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "ctasdrop", json!({"kind": "all_tables"})).await;
    let record = record_of(&runtime, "ctasdrop").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let source = env.source_client().await;
    for statement in [
        "CREATE TABLE public.gone AS SELECT qty, note FROM public.mig_orders",
        "DROP TABLE public.gone",
        "SELECT qty, note INTO public.reshaped FROM public.mig_orders",
        "ALTER TABLE public.reshaped ADD COLUMN z int DEFAULT 5",
        "ALTER TABLE public.reshaped DROP COLUMN note",
        "CREATE TABLE public.gone AS SELECT 1 AS again",
        "DROP TABLE public.gone",
        // No event trigger sees a CREATE TABLE AS run by EXPLAIN ANALYZE:
        // only the stream names this table.
        "EXPLAIN (ANALYZE, COSTS OFF) CREATE TABLE public.unseen AS SELECT qty, note FROM public.mig_orders",
        "DROP TABLE public.unseen",
        "INSERT INTO public.mig_orders (qty, note) VALUES (9, 'after the drops')",
    ] {
        source.batch_execute(statement).await.unwrap();
    }
    workload.wait_for_more(30).await;
    let stats = workload.stop().await;
    assert!(stats.committed > 0);
    // Refreshes (the monitor's job) until the slot has everything written.
    let end = clonesync::pg::wal::current_lsn(&source).await.unwrap();
    let started = Instant::now();
    let (mut created, mut added) = (Vec::new(), Vec::new());
    loop {
        let (c, a) = refresh_until_settled(&env, &record).await;
        created.extend(c);
        added.extend(a);
        if confirmed_up_to(&source, state.pipeline.slot.as_str(), end).await {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "apply stopped: {created:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for table in [
        "\"public\".\"gone\"",
        "\"public\".\"reshaped\"",
        "\"public\".\"unseen\" (stand-in)",
    ] {
        assert!(
            created.iter().any(|c| c == table),
            "{table} not in {created:?}"
        );
    }
    let (_, more) = refresh_until_settled(&env, &record).await;
    added.extend(more);
    assert_eq!(added, vec!["\"public\".\"reshaped\"".to_string()]);
    caught_up_equal_and_nothing_pending(&source, &clone, state.pipeline.slot.as_str()).await;
    let gone: Option<String> = clone
        .query_one("SELECT to_regclass('public.gone')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(gone, None, "the drop replayed on the copy");
    let unseen: Option<String> = clone
        .query_one("SELECT to_regclass('public.unseen')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unseen, None, "the stand-in went with the replayed drop");
    let errors = clone_log_errors(&env);
    assert!(
        errors
            .iter()
            .all(|e| !e.contains("gone") || e.contains("does not exist")),
        "{errors:#?}"
    );
    runtime.teardown(&state).await.unwrap();
}

/// A replay that runs too long (an index whose expression sleeps on the
/// copy only) held apply for every table on main before: PostgreSQL's
/// apply worker arms no `statement_timeout`. So did a replay whose
/// function fails an `ASSERT` on the copy (PostgreSQL's regression suite
/// has one: `sro_ifun`), which `WHEN OTHERS` does not catch. The monitor's cancel of a
/// replay older than its bound leaves the command pending with why, and
/// the rows written behind it, under a write load, reach the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_that_runs_too_long_is_cancelled_left_pending_and_apply_goes_on() {
    let env = source_env(true).await;
    let workload = Workload::start(env.source_endpoint(), 2, 31, Duration::from_millis(5));
    workload.wait_for_more(30).await;
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "slowreplay", json!({"kind": "all_tables"})).await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let copy_port: String = clone.query_one("SHOW port", &[]).await.unwrap().get(0);
    let source = env.source_client().await;
    source
        .batch_execute(&format!(
            "CREATE FUNCTION public.slow_on_copy(x int) RETURNS int LANGUAGE sql IMMUTABLE AS \
             $$ SELECT x + 0 * (SELECT count(*) FROM pg_sleep(CASE WHEN current_setting('port') = '{copy_port}' \
             THEN 3600 ELSE 0 END))::int $$"
        ))
        .await
        .unwrap();
    // An ASSERT's failure is not among the errors `WHEN OTHERS` catches:
    // before, it stopped apply on the index build that ran this function.
    source
        .batch_execute(&format!(
            "CREATE FUNCTION public.asserts_on_copy(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS \
             $$ BEGIN ASSERT current_setting('port') <> '{copy_port}', 'not on the copy'; RETURN x; END $$; \
             CREATE INDEX mig_orders_asserts ON public.mig_orders (public.asserts_on_copy(qty))"
        ))
        .await
        .unwrap();
    source
        .batch_execute(
            "CREATE INDEX mig_orders_slow ON public.mig_orders (public.slow_on_copy(qty))",
        )
        .await
        .unwrap();
    source
        .batch_execute(
            "INSERT INTO public.mig_orders (qty, note) VALUES (11, 'behind the slow replay')",
        )
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let replaying: i64 = clone
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'clonesync replay since %'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if replaying == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the replay never started"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        ddl::cancel_overdue_replays(&clone, Duration::from_secs(3600))
            .await
            .unwrap(),
        0,
        "a replay within its bound is left alone"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ddl::cancel_overdue_replays(&clone, Duration::from_secs(1))
            .await
            .unwrap(),
        1
    );
    let stats = workload.stop().await;
    assert!(stats.committed > 0);
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;
    assert_equal_by_content(&source, &clone).await;
    let summary = ddl::applied_summary(&clone).await.unwrap();
    assert!(
        summary
            .pending
            .iter()
            .any(|p| p.command_tag == "CREATE INDEX" && p.detail.contains("canceling statement")),
        "{:?}",
        summary.pending
    );
    assert!(
        summary
            .pending
            .iter()
            .any(|p| p.command_tag == "CREATE INDEX" && p.detail.contains("not on the copy")),
        "{:?}",
        summary.pending
    );
    assert_eq!(summary.pending_total, 2, "{:?}", summary.pending);
    runtime.teardown(&state).await.unwrap();
}

/// A table without a key created after setup under `FOR ALL TABLES`: on
/// main before, every `UPDATE` and `DELETE` on it failed on the source
/// ("does not have a replica identity and publishes updates"), as did an
/// `INSERT ... ON CONFLICT DO UPDATE` on recent minors. Now the capture
/// gives it REPLICA IDENTITY FULL in the creating transaction, so an
/// ordinary role's migration and writes succeed under load and the copy
/// gets the table and every row; a key added later puts DEFAULT back;
/// nothing of it is pending on the copy; teardown gives DEFAULT back to
/// the table still FULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyless_table_made_after_setup_stays_writable_and_reaches_the_copy() {
    let env = source_env(false).await;
    let source = env.source_client().await;
    // The application's role exists before the clone (a role made later
    // is not on the copy).
    let password = clonesync_tests::fixture::random_password();
    source
        .batch_execute(&format!(
            "CREATE ROLE app_owner LOGIN PASSWORD {}; GRANT CREATE ON SCHEMA public TO app_owner",
            clonesync::pg::quote::literal(password.expose())
        ))
        .await
        .unwrap();
    // Preflight says what happens to such a table.
    let spec = clonesync::pipeline::PipelineSpec::with_defaults(
        "keyless",
        clonesync::pipeline::Scope::AllTables,
    )
    .unwrap();
    let report = env.preflight(&spec).await.unwrap();
    assert!(
        report.warnings.iter().any(|w| w
            .starts_with("a table created later without a primary key gets REPLICA IDENTITY FULL")),
        "{:?}",
        report.warnings
    );
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "keyless", json!({"kind": "all_tables"})).await;
    let record = record_of(&runtime, "keyless").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let workload = Workload::start(env.source_endpoint(), 2, 41, Duration::from_millis(5));
    let app = connect(&Endpoint {
        user: "app_owner".into(),
        password: Some(password),
        ..env.source_endpoint()
    })
    .await;
    app.batch_execute(
        "CREATE TABLE public.app_log (at int, msg text); \
         INSERT INTO public.app_log SELECT g, 'm' || g FROM generate_series(1, 50) g; \
         UPDATE public.app_log SET msg = 'changed' WHERE at <= 10; \
         DELETE FROM public.app_log WHERE at > 40; \
         BEGIN; CREATE TABLE public.app_kv (k int UNIQUE, v text); \
         INSERT INTO public.app_kv VALUES (1, 'a'), (2, 'b'); \
         INSERT INTO public.app_kv VALUES (1, 'again') ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v; \
         COMMIT",
    )
    .await
    .expect("a keyless table's writes succeed on the source");
    assert_eq!(replica_identity(&source, "public.app_log").await, "f");
    assert_eq!(replica_identity(&source, "public.app_kv").await, "f");
    app.batch_execute("ALTER TABLE public.app_kv ADD PRIMARY KEY (k)")
        .await
        .unwrap();
    assert_eq!(
        replica_identity(&source, "public.app_kv").await,
        "d",
        "a key: DEFAULT again"
    );

    let added = refresh_until_synced(&env, &record).await;
    assert!(added.iter().any(|t| t.contains("app_log")), "{added:?}");
    app.batch_execute(
        "UPDATE public.app_log SET msg = 'after the refresh' WHERE at BETWEEN 11 AND 20; \
         DELETE FROM public.app_log WHERE at > 35; UPDATE public.app_kv SET v = 'z'",
    )
    .await
    .unwrap();
    workload.wait_for_more(100).await;
    workload.stop().await;
    caught_up_equal_and_nothing_pending(&source, &clone, state.pipeline.slot.as_str()).await;
    let rows: i64 = clone
        .query_one(
            "SELECT count(*) FILTER (WHERE msg = 'after the refresh') FROM public.app_log",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 10);

    runtime.teardown(&state).await.unwrap();
    assert_eq!(capture_objects(&source).await, (false, 0));
    assert_eq!(
        replica_identity(&source, "public.app_log").await,
        "d",
        "teardown gives DEFAULT back"
    );
}

/// A table without a key that exists at setup: refused by preflight as
/// before, unless the input lets setup give it REPLICA IDENTITY FULL
/// (`pipeline.keyless_tables`). Then preflight says so, setup goes
/// through, UPDATE and DELETE on it work on the source under load, the
/// copy is equal, and teardown gives it DEFAULT back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyless_table_at_setup_is_given_full_identity_when_the_input_says_so() {
    let env = source_env(false).await;
    let source = env.source_client().await;
    source
        .batch_execute(
            "CREATE TABLE public.events_log (at int, what text); \
             INSERT INTO public.events_log SELECT g, 'e' || g FROM generate_series(1, 100) g",
        )
        .await
        .unwrap();
    let runtime = runtime(&env).await;
    let refused = runtime
        .run(
            "keyless-refused",
            &request(
                "keyless_refused",
                json!({"kind": "all_tables"}),
                DB,
                short_waits(),
            ),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(refused.error.as_deref(), Some("Preflight.Failed"));
    let cause = refused.cause.unwrap_or_default();
    assert!(
        cause.contains("replica_identity") && cause.contains("pipeline.keyless_tables"),
        "{cause}"
    );

    let mut input = request(
        "keyless_full",
        json!({"kind": "all_tables"}),
        DB,
        short_waits(),
    );
    input["pipeline"]["keyless_tables"] = json!("replica_identity_full");
    let outcome = runtime
        .run("keyless-full", &input, &mut |_| {})
        .await
        .unwrap();
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    let state = outcome.state().unwrap();
    assert_eq!(replica_identity(&source, "public.events_log").await, "f");
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let workload = Workload::start(env.source_endpoint(), 2, 53, Duration::from_millis(5));
    source
        .batch_execute(
            "UPDATE public.events_log SET what = 'changed' WHERE at <= 20; \
             DELETE FROM public.events_log WHERE at > 90",
        )
        .await
        .expect("UPDATE and DELETE on a published table without a key");
    workload.wait_for_more(100).await;
    workload.stop().await;
    caught_up_equal_and_nothing_pending(&source, &clone, state.pipeline.slot.as_str()).await;
    runtime.teardown(&state).await.unwrap();
    assert_eq!(
        replica_identity(&source, "public.events_log").await,
        "d",
        "teardown gives DEFAULT back"
    );
}

/// A role made on the source after the clone (roles are not replicated)
/// creates a table and writes to it, while a load writes to the other
/// tables. On main before, the table could not be made on the copy ("role
/// ... does not exist"), its rows then stopped apply for every table, and
/// no refresh could make it. Now the copy gets the role (NOLOGIN, no
/// rights) and the table, owned by it; apply never stops; every table is
/// equal; the one pending change names the role and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_of_a_role_made_after_the_clone_reaches_the_copy_and_apply_never_stops() {
    let env = source_env(false).await;
    let source = env.source_client().await;
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "lateroles", json!({"kind": "all_tables"})).await;
    let record = record_of(&runtime, "lateroles").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let workload = Workload::start(env.source_endpoint(), 2, 43, Duration::from_millis(5));
    workload.wait_for_more(50).await;
    let password = clonesync_tests::fixture::random_password();
    source
        .batch_execute(&format!(
            "CREATE ROLE late_owner LOGIN PASSWORD {}; GRANT CREATE ON SCHEMA public TO late_owner",
            clonesync::pg::quote::literal(password.expose())
        ))
        .await
        .unwrap();
    let late = connect(&Endpoint {
        user: "late_owner".into(),
        password: Some(password),
        ..env.source_endpoint()
    })
    .await;
    late.batch_execute(
        "CREATE TABLE public.late_orders (id int PRIMARY KEY, note text); \
         INSERT INTO public.late_orders SELECT g, 'n' || g FROM generate_series(1, 100) g",
    )
    .await
    .unwrap();
    refresh_until_synced(&env, &record).await;
    late.batch_execute(
        "UPDATE public.late_orders SET note = 'later' WHERE id <= 10; DELETE FROM public.late_orders WHERE id > 90",
    )
    .await
    .unwrap();
    workload.wait_for_more(100).await;
    workload.stop().await;
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;
    assert_equal_by_content(&source, &clone).await;
    let (owner, login): (String, bool) = {
        let row = clone
            .query_one(
                "SELECT c.relowner::regrole::text, r.rolcanlogin FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner \
                 WHERE c.oid = 'public.late_orders'::regclass",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((owner.as_str(), login), ("late_owner", false));
    let errors: i64 = clone
        .query_one(
            "SELECT coalesce(sum((to_jsonb(s) ->> 'apply_error_count')::bigint), 0)::bigint FROM pg_stat_subscription_stats s",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(errors, 0, "apply never stopped");
    // Pending: the grant, replayed before the role was there, and the
    // table, made with a role the copy did not have.
    let summary = ddl::applied_summary(&clone).await.unwrap();
    let pending: Vec<(&str, &str)> = summary
        .pending
        .iter()
        .map(|p| (p.command_tag.as_str(), p.detail.as_str()))
        .collect();
    assert_eq!(pending.len(), 2, "{pending:?}");
    assert!(
        pending[0].0 == "GRANT" && pending[0].1.contains("role \"late_owner\" does not exist"),
        "{pending:?}"
    );
    assert!(
        pending[1].0 == "CREATE TABLE"
            && pending[1]
                .1
                .contains("role late_owner did not exist on the copy")
            && pending[1]
                .1
                .contains("granted late_owner USAGE and CREATE on schema public"),
        "{pending:?}"
    );
    // The same, read without a refresh (what `status` shows when its
    // refresh fails).
    let alone = schema::schema_changes_pipeline(&env.plane, &record)
        .await
        .unwrap();
    assert_eq!(alone, vec![(DB.to_string(), summary.clone())]);
    runtime.teardown(&state).await.unwrap();
}

/// An unlogged table in scope: PostgreSQL does not replicate it, so it is
/// a warning at preflight (before, `Preflight.Failed [unlogged_tables]`
/// refused the database), the setup goes through, and the monitor (so
/// `status`) and `verify` name it as not replicated. `SET LOGGED` under
/// load makes it replicated: the next refresh copies it whole and it is
/// equal; `SET UNLOGGED` makes it named again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unlogged_table_is_named_not_replicated_and_set_logged_it_is_copied() {
    let env = source_env(false).await;
    let source = env.source_client().await;
    source
        .batch_execute(
            "CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY, v text); \
             INSERT INTO public.scratch SELECT g, 'before' FROM generate_series(1, 200) g",
        )
        .await
        .unwrap();
    let spec = clonesync::pipeline::PipelineSpec::with_defaults(
        "unlogged",
        clonesync::pipeline::Scope::AllTables,
    )
    .unwrap();
    let report = env
        .preflight(&spec)
        .await
        .expect("a warning, not a failure");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("not replicated") && w.contains("public.scratch")),
        "{:?}",
        report.warnings
    );
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "unlogged", json!({"kind": "all_tables"})).await;
    let record = record_of(&runtime, "unlogged").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let named = |report: &clonesync::monitor::MonitorReport| {
        report
            .targets
            .iter()
            .find_map(|t| t.tables_not_replicated.clone())
            .expect("a reading")
    };
    let registered = PipelineRecord {
        clone_info: state.clone_info().ok().cloned(),
        ..record.clone()
    };
    let report =
        clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&registered)).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(named(&report), ["public.scratch"]);
    assert_eq!(
        clonesync::workflow::verify::not_replicated_pipeline(&env.plane, &registered)
            .await
            .unwrap(),
        [format!("{DB}: public.scratch")]
    );

    let workload = Workload::start(env.source_endpoint(), 2, 47, Duration::from_millis(5));
    source
        .batch_execute(
            "ALTER TABLE public.scratch SET LOGGED; \
             INSERT INTO public.scratch SELECT g, 'after' FROM generate_series(201, 300) g",
        )
        .await
        .unwrap();
    let added = refresh_until_synced(&env, &record).await;
    assert!(added.iter().any(|t| t.contains("scratch")), "{added:?}");
    source
        .batch_execute("UPDATE public.scratch SET v = 'streamed' WHERE id <= 50")
        .await
        .unwrap();
    workload.wait_for_more(100).await;
    workload.stop().await;
    caught_up_equal_and_nothing_pending(&source, &clone, state.pipeline.slot.as_str()).await;
    let rows: i64 = clone
        .query_one("SELECT count(*) FROM public.scratch", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 300);
    let report =
        clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&registered)).await;
    assert!(named(&report).is_empty(), "{:?}", named(&report));

    source
        .batch_execute("ALTER TABLE public.scratch SET UNLOGGED")
        .await
        .unwrap();
    let report =
        clonesync::monitor::check(&*runtime.cloud, std::slice::from_ref(&registered)).await;
    assert_eq!(named(&report), ["public.scratch"]);
    runtime.teardown(&state).await.unwrap();
}

/// `person` made by `CREATE TABLE AS` (its rows reach the stream before the
/// command, so apply stops on them until the refresh makes the table) and
/// `emp INHERITS person` after it in the same transaction. `emp` sorts
/// first and cannot be made before `person`: on main before, the refresh
/// failed there and made neither, so apply stayed stopped. Now the refresh
/// makes `person` alone, from its command's definition, and waits: once
/// apply is past `person`'s rows, `emp`'s own command replays (exactly, as
/// its role), and a later refresh copies both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_refresh_makes_a_parent_before_a_child_that_sorts_first() {
    let env = source_env(false).await;
    let source = env.source_client().await;
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "parents", json!({"kind": "all_tables"})).await;
    let record = record_of(&runtime, "parents").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    source
        .batch_execute(
            "CREATE TABLE public.person AS SELECT 1 AS id, 'p'::text AS name; \
             CREATE TABLE public.emp (salary int) INHERITS (public.person); \
             INSERT INTO public.emp VALUES (2, 'e', 10)",
        )
        .await
        .unwrap();
    let created = {
        let report = schema::refresh_pipeline(&env.plane, &record)
            .await
            .expect("the refresh goes through");
        report.triples[0].1.created_on_target.clone()
    };
    assert_eq!(
        created,
        ["\"public\".\"person\""],
        "the table apply stopped on, from its command's definition"
    );
    let (_, added) = refresh_until_settled(&env, &record).await;
    assert_eq!(added.len(), 2, "{added:?}");
    let parent: Option<String> = clone
        .query_one(
            "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = 'public.emp'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        parent.as_deref(),
        Some("person"),
        "emp's own command replayed"
    );
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;
    assert_equal_by_content(&source, &clone).await;
    let rows: i64 = clone
        .query_one("SELECT count(*) FROM public.person", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 2, "person and, through inheritance, emp");
    runtime.teardown(&state).await.unwrap();
}

/// A table-list scope ignores tables created later, and takes them (and
/// tables the clone copied but the list left out) when setup runs again
/// with a longer list: the publication gets them, the refresh copies them
/// whole (the clone's stale rows of a left-out table go first).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_list_ignores_new_tables_until_the_input_lists_them() {
    let env = source_env(false).await;
    let workload = Workload::start(env.source_endpoint(), 2, 33, Duration::from_millis(5));
    workload.wait_for_more(30).await;
    let runtime = runtime(&env).await;
    let listed = |tables: &[&str]| json!({"kind": "tables", "tables": tables.iter().map(|t| json!({"schema": "public", "name": t})).collect::<Vec<_>>()});
    let state = setup(&runtime, "listed", listed(&["accounts"])).await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let source = env.source_client().await;
    source
        .batch_execute(
            "CREATE TABLE public.extra (id int PRIMARY KEY, v text); \
             INSERT INTO public.extra SELECT g, 'e' || g FROM generate_series(1, 300) g",
        )
        .await
        .unwrap();
    workload.wait_for_more(50).await;
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;
    let record = record_of(&runtime, "listed").await;
    let refreshed = schema::refresh_pipeline(&env.plane, &record).await.unwrap();
    assert!(refreshed.triples[0].1.added.is_empty(), "{refreshed:?}");
    let absent: bool = clone
        .query_one("SELECT to_regclass('public.extra') IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        absent,
        "a table the list does not name is not made on the target"
    );
    let summary = ddl::applied_summary(&clone).await.unwrap();
    assert_eq!(summary.out_of_scope, 1, "{summary:?}");

    // The input now lists it, and `order_lines`, which the clone copied but
    // nothing kept up to date since.
    let grown = setup(
        &runtime,
        "listed",
        listed(&["accounts", "order_lines", "extra"]),
    )
    .await;
    assert_eq!(
        grown.clone_info().unwrap(),
        state.clone_info().unwrap(),
        "the same clone"
    );
    let record = record_of(&runtime, "listed").await;
    let added = refresh_until_synced(&env, &record).await;
    let mut added_sorted = added.clone();
    added_sorted.sort();
    assert_eq!(
        added_sorted,
        vec![
            "\"public\".\"extra\"".to_string(),
            "\"public\".\"order_lines\"".to_string()
        ]
    );
    workload.wait_for_more(50).await;
    workload.stop().await;
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;
    let tables: Vec<clonesync::pg::TableName> = ["accounts", "order_lines", "extra"]
        .iter()
        .map(|t| clonesync::pg::TableName::new("public", t).unwrap())
        .collect();
    let (states, differences) = compare_tables(&source, &clone, &tables).await;
    assert!(differences.is_empty(), "{differences:#?}");
    assert_eq!(states.len(), 3);
    runtime.teardown(&state).await.unwrap();
}

/// The capture's statement splitter and tag matcher and the apply side's
/// scope filter, on a real server (they are SQL functions).
#[tokio::test]
async fn the_statement_splitter_tag_matcher_and_scope_filter() {
    let server = clonesync_tests::fixture::TestServer::start().await;
    let client = server.client().await;
    ddl::install_capture(&client).await.unwrap();
    ddl::install_apply(&client, &clonesync::pipeline::Scope::AllTables, false)
        .await
        .unwrap();
    let cases: &[(&str, usize)] = &[
        ("ALTER TABLE t ADD c int; INSERT INTO t VALUES (';')", 2),
        ("SELECT 'a;b'", 1),
        ("SELECT $$a;b$$; SELECT 1", 2),
        ("SELECT $tag$ $x$ ; $tag$", 1),
        ("SELECT \"a;b\" FROM t", 1),
        ("-- c;\nSELECT 1", 1),
        ("/* a /* nested; */ ; */ SELECT 1", 1),
        ("SELECT E'\\';'", 1),
        ("SELECT 'it''s; fine'", 1),
        (";;SELECT 1;;", 1),
        ("SELECT 1; -- trailing;", 1),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$; SELECT 2",
            2,
        ),
        ("SELECT $1; SELECT a$b$c FROM t", 2),
        // PostgreSQL's scanner: a non-ASCII character continues an
        // identifier, so "€$$" is a name, not a dollar quote's start.
        (
            "SELECT 1 AS €$$; ALTER TABLE t ADD q int; SELECT $$; ALTER TABLE t DROP n; $$",
            3,
        ),
        ("SELECT 1 --c\r; SELECT 2", 2),
        ("", 0),
        // A ';' inside parentheses (a rule's action list) or a BEGIN
        // ATOMIC body, where CASE ... END does not close the body.
        (
            "CREATE RULE r AS ON UPDATE TO t DO INSTEAD (DELETE FROM t WHERE a = 1; INSERT INTO t VALUES (2)); SELECT 1",
            2,
        ),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 3",
            2,
        ),
        (
            "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END; CREATE TABLE x (a int)",
            2,
        ),
        ("BEGIN; CREATE TABLE y (a int); END", 3),
    ];
    for (text, expected) in cases {
        let n: i32 = client
            .query_one(
                "SELECT coalesce(array_length(clonesync.ddl_statements($1, true), 1), 0)",
                &[text],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n as usize, *expected, "{text:?}");
    }
    let tags: &[(&str, &str, bool)] = &[
        (
            "create unique index concurrently x on t (a)",
            "CREATE INDEX",
            true,
        ),
        (
            "CREATE  OR REPLACE\n VIEW v AS SELECT 1",
            "CREATE VIEW",
            true,
        ),
        (
            "create index concurrently_named on t (a)",
            "CREATE INDEX",
            true,
        ),
        ("/* why */ alter table t add c int", "ALTER TABLE", true),
        ("ALTER TABLE t ADD c int", "ALTER TYPE", false),
        ("CREATE TABLE t AS SELECT 1", "CREATE TABLE", true),
        ("INSERT INTO t VALUES (1)", "CREATE TABLE", false),
    ];
    for (statement, tag, expected) in tags {
        let matches: bool = client
            .query_one(
                "SELECT clonesync.ddl_statement_tag_matches($1, $2)",
                &[statement, tag],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(matches, *expected, "{statement:?} as {tag:?}");
    }
    let table_in = |schema: &str, name: &str| {
        json!({"object_type": "table", "schema": schema, "identity": format!("{schema}.{name}"),
               "definition": {"kind": "table", "schema": schema, "name": name}})
    };
    let index_on = |schema: &str, table: &str| {
        json!({"object_type": "index", "schema": schema, "identity": format!("{schema}.i"),
               "definition": {"kind": "index", "name": "i", "table_schema": schema, "table_name": table}})
    };
    let enum_in = |schema: &str| {
        json!({"object_type": "type", "schema": schema, "identity": format!("{schema}.mood"),
               "definition": {"kind": "enum", "schema": schema, "name": "mood"}})
    };
    let tables = json!({"kind": "tables", "tables": [{"schema": "app", "name": "orders"}]});
    let schemas = json!({"kind": "schemas", "schemas": ["app"]});
    let all = json!({"kind": "all_tables"});
    let scoped: &[(&serde_json::Value, serde_json::Value, bool)] = &[
        (&all, table_in("app", "x"), true),
        (&all, table_in("clonesync", "ddl_queue"), false),
        (&all, table_in("pg_temp_3", "x"), false),
        (&schemas, table_in("app", "x"), true),
        (&schemas, table_in("other", "x"), false),
        (&tables, table_in("app", "orders"), true),
        (&tables, table_in("app", "invoices"), false),
        (&tables, index_on("app", "orders"), true),
        (&tables, index_on("app", "invoices"), false),
        // The enum a listed table uses lives in its schema.
        (&tables, enum_in("app"), true),
        (&tables, enum_in("other"), false),
        // A command the source could not record: wherever it was, reported.
        (
            &schemas,
            json!({"object_type": "capture failure", "tag": "ALTER TABLE", "error": "x"}),
            true,
        ),
        (
            &tables,
            json!({"object_type": "capture failure", "tag": "ALTER TABLE", "error": "x"}),
            true,
        ),
    ];
    for (scope, command, expected) in scoped {
        let inside: bool = client
            .query_one(
                "SELECT clonesync.ddl_in_scope($1::text::jsonb, $2::text::jsonb)",
                &[&scope.to_string(), &command.to_string()],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(inside, *expected, "{command} in {scope}");
    }
}

/// The queue holds client strings: a password in one (a user mapping's
/// options) must not be captured, so it never travels to the target. And a
/// capture that fails leaves the user's DDL to succeed.
#[tokio::test]
async fn a_password_in_a_user_mapping_is_never_queued() {
    let server = clonesync_tests::fixture::TestServer::start().await;
    let client = server.client().await;
    assert!(ddl::install_capture(&client).await.unwrap(), "made now");
    assert!(
        !ddl::install_capture(&client).await.unwrap(),
        "twice = once"
    );
    let secret = clonesync_tests::fixture::random_password();
    client
        .batch_execute(&format!(
            "CREATE FOREIGN DATA WRAPPER w; CREATE SERVER s FOREIGN DATA WRAPPER w; \
             CREATE USER MAPPING FOR CURRENT_USER SERVER s OPTIONS (user 'u', password {}); \
             ALTER USER MAPPING FOR CURRENT_USER SERVER s OPTIONS (SET password {}); \
             CREATE TABLE public.captured (id int)",
            clonesync::pg::quote::literal(secret.expose()),
            clonesync::pg::quote::literal(secret.expose()),
        ))
        .await
        .unwrap();
    let queued: Vec<String> = client
        .query(
            "SELECT command_tag || ' ' || command_text || commands::text FROM clonesync.ddl_queue",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        queued.iter().any(|q| q.starts_with("CREATE TABLE")),
        "the capture works: {queued:?}"
    );
    assert!(
        queued.iter().all(|q| !q.contains(secret.expose())),
        "a password was queued"
    );
    assert!(
        queued.iter().all(|q| !q.contains("USER MAPPING")),
        "{queued:?}"
    );
    let text: String = client
        .query_one(
            "SELECT command_text FROM clonesync.ddl_queue WHERE command_tag = 'CREATE TABLE'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        text, "CREATE TABLE public.captured (id int)",
        "only its own statement"
    );
    // A capture that fails never fails the user's DDL: it queues a row
    // saying so (the target reports it pending).
    client
        .batch_execute(
            "CREATE OR REPLACE FUNCTION clonesync.ddl_definition(p_classid oid, p_objid oid) RETURNS jsonb \
             LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected capture fault'; END $$",
        )
        .await
        .unwrap();
    client
        .batch_execute("CREATE TABLE public.after_a_fault (id int)")
        .await
        .expect("the DDL succeeds although its capture failed");
    let failure: String = client
        .query_one(
            "SELECT commands::text FROM clonesync.ddl_queue WHERE command_tag = 'CREATE TABLE' ORDER BY id DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        failure.contains("capture failure") && failure.contains("injected capture fault"),
        "{failure}"
    );
    // Removing it leaves nothing of clonesync's.
    assert!(ddl::remove(&client).await.unwrap());
    assert_eq!(capture_objects(&client).await, (false, 0));
    assert!(!ddl::remove(&client).await.unwrap(), "twice = once");
}

/// The capture leaves no trace in the user's session: after DDL,
/// `lastval()` and `currval()` give what they gave before (the queue's
/// ids come from no sequence), also in one transaction with several
/// captured commands, whose ids still grow in order; an id already taken
/// is skipped, never refused.
#[tokio::test]
async fn the_capture_leaves_lastval_and_currval_as_they_were() {
    let server = clonesync_tests::fixture::TestServer::start().await;
    let admin = server.client().await;
    assert!(ddl::install_capture(&admin).await.unwrap());
    let password = clonesync_tests::fixture::random_password();
    admin
        .batch_execute(&format!(
            "CREATE ROLE app LOGIN PASSWORD {}; CREATE SCHEMA app AUTHORIZATION app",
            clonesync::pg::quote::literal(password.expose())
        ))
        .await
        .unwrap();
    let app = connect(&Endpoint {
        user: "app".into(),
        password: Some(password),
        ..server.endpoint()
    })
    .await;
    app.batch_execute(
        "CREATE TABLE app.orders (id serial PRIMARY KEY, x int);          INSERT INTO app.orders (x) VALUES (1), (2)",
    )
    .await
    .unwrap();
    assert_eq!(lastval_currval(&app).await, Ok((2, 2)));
    app.batch_execute("CREATE TABLE app.more (id int); CREATE INDEX ON app.more (id)")
        .await
        .unwrap();
    assert_eq!(lastval_currval(&app).await, Ok((2, 2)), "after DDL");
    app.batch_execute(
        "BEGIN; INSERT INTO app.orders (x) VALUES (3); ALTER TABLE app.more ADD COLUMN y int; \
         CREATE VIEW app.v AS SELECT * FROM app.more; COMMENT ON VIEW app.v IS 'v'",
    )
    .await
    .unwrap();
    assert_eq!(lastval_currval(&app).await, Ok((3, 3)), "in a transaction");
    app.batch_execute("COMMIT").await.unwrap();
    let ids: Vec<i64> = admin
        .query(
            "SELECT id FROM clonesync.ddl_queue ORDER BY captured_at, id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(ids.len() >= 6, "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");

    // An id the transaction would take is taken already: the next is used.
    admin.batch_execute("BEGIN").await.unwrap();
    let xid: i64 = admin
        .query_one("SELECT pg_current_xact_id()::text::bigint", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .execute(
            "INSERT INTO clonesync.ddl_queue (id, txid, event, command_tag, role_name, search_path, command_text, commands) \
             VALUES ($1, '3'::xid8, 'ddl_command_end', 'CREATE TABLE', 'x', '', '', '[]')",
            &[&(xid * 1_048_576)],
        )
        .await
        .unwrap();
    admin
        .batch_execute("CREATE TABLE public.after_a_taken_id (id int); COMMIT")
        .await
        .expect("the DDL succeeds");
    let id: i64 = admin
        .query_one(
            "SELECT id FROM clonesync.ddl_queue WHERE command_text LIKE '%after_a_taken_id%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, xid * 1_048_576 + 1);
}

async fn lastval_currval(client: &Client) -> Result<(i64, i64), String> {
    client
        .query_one("SELECT lastval(), currval('app.orders_id_seq')", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .map_err(|e| e.to_string())
}

/// A migration run by a role that owns its tables, not a superuser, in
/// one explicit transaction of separately sent statements (as migration
/// tools send them): every statement is replayed as that role, with its
/// USING expression, and a function that tries to become superuser while
/// the target applies it gets no further than on the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_non_superuser_migration_in_one_transaction_is_replayed_as_its_role_and_cannot_escalate()
{
    let env = TestEnv::start().await;
    let admin = env.source_client().await;
    create_schema(&admin).await;
    let secret = clonesync_tests::fixture::random_password();
    admin
        .batch_execute(&format!(
            "CREATE ROLE app LOGIN PASSWORD {}; CREATE SCHEMA app AUTHORIZATION app; \
             CREATE TABLE app.prices (id int PRIMARY KEY, price int NOT NULL); \
             ALTER TABLE app.prices OWNER TO app; \
             INSERT INTO app.prices SELECT g, g * 100 + 99 FROM generate_series(1, 100) g",
            clonesync::pg::quote::literal(secret.expose())
        ))
        .await
        .unwrap();
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "roles", json!({"kind": "all_tables"})).await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let app = connect(&Endpoint {
        user: "app".into(),
        password: Some(secret.clone()),
        ..env.source_endpoint()
    })
    .await;
    app.batch_execute("BEGIN").await.unwrap();
    for statement in [
        "ALTER TABLE app.prices ADD COLUMN currency text NOT NULL DEFAULT 'EUR'",
        "ALTER TABLE app.prices ALTER COLUMN price TYPE numeric(10,2) USING price / 100.0",
        "COMMENT ON TABLE app.prices IS 'prices in euro'",
        "CREATE INDEX prices_currency ON app.prices (currency)",
        "INSERT INTO app.prices VALUES (1000, 12.34, 'USD')",
    ] {
        app.batch_execute(statement).await.unwrap();
    }
    app.batch_execute("COMMIT").await.unwrap();
    // Harmless on the source (app may not SET ROLE postgres); on the target
    // the apply's own login could, were the statement run under it.
    app.batch_execute(
        // IMMUTABLE: the default is evaluated once, when the column is
        // added (a volatile one would make the change pending, rightly).
        "CREATE FUNCTION app.escalate() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN \
           BEGIN SET ROLE postgres; ALTER ROLE app SUPERUSER; EXCEPTION WHEN OTHERS THEN NULL; END; \
           RETURN 1; END $$",
    )
    .await
    .unwrap();
    app.batch_execute("ALTER TABLE app.prices ADD COLUMN z int DEFAULT app.escalate()")
        .await
        .unwrap();
    let source = env.source_client().await;
    wait_caught_up(&source, state.pipeline.slot.as_str()).await;

    let superuser: bool = clone
        .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = 'app'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!superuser, "app became superuser on the target");
    let tables = tables_in(&source, &["app"]).await;
    let (_, differences) = compare_tables(&source, &clone, &tables).await;
    assert!(differences.is_empty(), "{differences:#?}");
    assert!(
        drift(&source, &clone, &clonesync::pipeline::Scope::AllTables)
            .await
            .is_empty()
    );
    let summary = ddl::applied_summary(&clone).await.unwrap();
    assert!(summary.pending.is_empty(), "{:?}", summary.pending);
    let how: Vec<(String, String)> = clone
        .query(
            "SELECT command_tag, how FROM clonesync.ddl_applied ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        how.iter().all(|(_, h)| h.starts_with("replayed")),
        "{how:?}"
    );
    let (comment, owner): (Option<String>, String) = {
        let row = clone
            .query_one(
                "SELECT obj_description('app.prices'::regclass, 'pg_class'), \
                        (SELECT relowner::regrole::text FROM pg_class WHERE oid = 'app.prices_currency'::regclass)",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(comment.as_deref(), Some("prices in euro"));
    assert_eq!(owner, "app", "made as the role that made it on the source");
    runtime.teardown(&state).await.unwrap();
}

/// The drift report names every difference, never fixes one: a column
/// missing, one extra, a type, a default, nullability, the primary key, an
/// index, a table on one side only; tables out of scope are not compared.
#[tokio::test]
async fn the_drift_report_names_each_difference() {
    let source_server = clonesync_tests::fixture::TestServer::start().await;
    let target_server = clonesync_tests::fixture::TestServer::start().await;
    let (source, target) = (source_server.client().await, target_server.client().await);
    let shape = "CREATE SCHEMA app; CREATE SCHEMA other; \
        CREATE TABLE app.t (id int PRIMARY KEY, a int NOT NULL DEFAULT 1, b text, c int); \
        CREATE INDEX t_b ON app.t (b); CREATE TABLE app.gone (id int PRIMARY KEY); \
        CREATE TABLE other.x (id int PRIMARY KEY)";
    source.batch_execute(shape).await.unwrap();
    target.batch_execute(shape).await.unwrap();
    let scope =
        clonesync::pipeline::Scope::schemas(vec![clonesync::pg::PgName::new("app").unwrap()])
            .unwrap();
    assert!(
        drift(&source, &target, &scope).await.is_empty(),
        "same shape, no drift"
    );
    target
        .batch_execute(
            "ALTER TABLE app.t DROP COLUMN c, ADD COLUMN extra int, ALTER COLUMN b TYPE varchar(10), \
               ALTER COLUMN a SET DEFAULT 2, ALTER COLUMN a DROP NOT NULL, DROP CONSTRAINT t_pkey; \
             DROP INDEX app.t_b; DROP TABLE app.gone; CREATE TABLE app.local_only (id int); \
             ALTER TABLE other.x ADD COLUMN ignored int",
        )
        .await
        .unwrap();
    let differences = drift(&source, &target, &scope).await;
    let named: Vec<(String, String)> = differences
        .iter()
        .map(|d| (d.table.clone(), d.what.clone()))
        .collect();
    for expected in [
        ("\"app\".\"t\"", "column a"),
        ("\"app\".\"t\"", "column b"),
        ("\"app\".\"t\"", "column c"),
        ("\"app\".\"t\"", "column extra"),
        ("\"app\".\"t\"", "primary key"),
        ("\"app\".\"t\"", "index t_b"),
        ("\"app\".\"t\"", "index t_pkey"),
        ("\"app\".\"gone\"", "table"),
        ("\"app\".\"local_only\"", "table"),
    ] {
        assert!(
            named.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {named:#?}"
        );
    }
    assert!(
        named.iter().all(|(t, _)| !t.contains("other")),
        "out of scope: {named:?}"
    );
    let a = differences.iter().find(|d| d.what == "column a").unwrap();
    assert_eq!(a.source.as_deref(), Some("integer NOT NULL DEFAULT 1"));
    assert_eq!(a.target.as_deref(), Some("integer DEFAULT 2"));
    // Reads only: the report twice is the same, and nothing was fixed.
    assert_eq!(drift(&source, &target, &scope).await, differences);
}

/// Queue rows on the source, and the newest id.
async fn queue_rows(client: &Client) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT count(*), coalesce(max(id), 0) FROM clonesync.ddl_queue",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The source is kept small: under a write load, the queue rows of a
/// migration stay while any logical slot of the database (here a user's
/// own) has not confirmed them, and go once every slot has, all but the
/// newest; the monitor reports the queue's size; the copy keeps its
/// pending list whole; the queue continues after the newest id and later
/// changes still reach the copy; every table ends equal by content.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_queue_is_pruned_once_every_slot_has_it_and_the_copy_loses_nothing() {
    let env = source_env(false).await;
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "prune", json!({"kind": "all_tables"})).await;
    let record = record_of(&runtime, "prune").await;
    let source = env.source_client().await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let load = Workload::start(env.source_endpoint(), 2, 11, Duration::from_millis(5));
    load.wait_for_more(50).await;

    // A reader of the user's own that never confirms anything.
    source
        .execute(
            "SELECT pg_create_logical_replication_slot('app_reader', 'test_decoding')",
            &[],
        )
        .await
        .unwrap();
    for i in 0..10 {
        source
            .batch_execute(&format!(
                "CREATE TABLE public.pr_{i} (id int PRIMARY KEY); INSERT INTO public.pr_{i} VALUES ({i})"
            ))
            .await
            .unwrap();
    }
    // Not replayable (a DO block): pending on the copy.
    source
        .batch_execute("DO $$ BEGIN EXECUTE 'COMMENT ON TABLE public.pr_0 IS ''pruned'''; END $$")
        .await
        .unwrap();
    let (rows_before, newest_before) = queue_rows(&source).await;
    assert!(rows_before >= 11, "{rows_before}");
    wait_caught_up(&source, "clonesync_prune").await;
    let pending_before = ddl::applied_summary(&clone).await.unwrap();
    assert_eq!(pending_before.pending_total, 1, "{pending_before:?}");

    for _ in 0..3 {
        let size = clonesync::steps::prune_queue::run(&source)
            .await
            .unwrap()
            .expect("a queue");
        assert_eq!(
            size.pruned, 0,
            "a slot that has not confirmed them keeps them"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(queue_rows(&source).await.0, rows_before);
    source
        .execute("SELECT pg_drop_replication_slot('app_reader')", &[])
        .await
        .unwrap();

    // Every slot has them now: the monitor's run prunes, and says so.
    wait_caught_up(&source, "clonesync_prune").await;
    let (report, lines) = clonesync::monitor::run(&*runtime.cloud, 1_795_000_000_000)
        .await
        .unwrap();
    let queue = report
        .targets
        .iter()
        .find_map(|t| t.source_queue)
        .expect("the monitor read the queue");
    assert!(queue.pruned >= rows_before - 1, "{queue:?}");
    let (rows_after, newest_after) = queue_rows(&source).await;
    assert_eq!(rows_after, 1, "only the newest stays");
    assert_eq!(newest_after, newest_before);
    assert_eq!(queue.rows, rows_after);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"SchemaChangeQueueRows\":1")
                && l.contains("SchemaChangeQueueBytes")),
        "{lines:?}"
    );
    let again = clonesync::steps::prune_queue::run(&source)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.pruned, 0, "twice = once");

    // Later changes still flow, and the queue continues after its newest.
    source
        .batch_execute(
            "CREATE TABLE public.after_prune (id int PRIMARY KEY); INSERT INTO public.after_prune VALUES (1)",
        )
        .await
        .unwrap();
    assert!(queue_rows(&source).await.1 > newest_before);
    load.wait_for_more(50).await;
    load.stop().await;
    // New tables join the subscription by the refresh, as always.
    refresh_until_synced(&env, &record).await;
    wait_caught_up(&source, "clonesync_prune").await;
    assert_equal_by_content(&source, &clone).await;
    let made: bool = clone
        .query_one("SELECT to_regclass('public.after_prune') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(made);
    let pending_after = ddl::applied_summary(&clone).await.unwrap();
    assert_eq!(
        pending_after.pending, pending_before.pending,
        "the copy's pending list is whole"
    );
    assert_eq!(pending_after.applied, pending_before.applied + 1);
    teardown_with_clone(&runtime, "prune").await;
}

/// A table made after setup gets a `NOT VALID` check constraint (on 18
/// also a `NOT NULL ... NOT VALID`) that rows it already held break, as
/// PostgreSQL allows. The copy has the constraint too (replayed), so its
/// table copy failed for ever before (the regression suite's
/// `invalid_check_con`, `gtest20b`). Now the refresh holds it back while
/// the table is copied and adds it back, still `NOT VALID`, once the copy
/// is done: under a write load every table is equal, the constraint is on
/// the copy as on the source (drift sees none), and nothing is pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_whose_rows_break_its_not_valid_constraint_is_copied_whole() {
    let env = source_env(true).await;
    let workload = Workload::start(env.source_endpoint(), 2, 61, Duration::from_millis(5));
    workload.wait_for_more(30).await;
    let runtime = runtime(&env).await;
    let state = setup(&runtime, "notvalid", json!({"kind": "all_tables"})).await;
    let record = record_of(&runtime, "notvalid").await;
    let clone = connect(&clone_client_endpoint(&env, &state)).await;
    let source = env.source_client().await;
    let major = clonesync_tests::fixture::server_major(&source).await;
    source
        .batch_execute(
            "CREATE TABLE public.loose (id int PRIMARY KEY, v int); \
             INSERT INTO public.loose SELECT g, g FROM generate_series(1, 100) g; \
             INSERT INTO public.loose VALUES (101, NULL); \
             ALTER TABLE public.loose ADD CONSTRAINT v_small CHECK (v < 50) NOT VALID; \
             INSERT INTO public.loose VALUES (102, 7)",
        )
        .await
        .unwrap();
    if major >= 18 {
        source
            .batch_execute("ALTER TABLE public.loose ADD CONSTRAINT v_set NOT NULL v NOT VALID")
            .await
            .unwrap();
    }
    // A parent's constraint is its children's too: neither is held back
    // (their rows keep it, so their copies go through).
    source
        .batch_execute(
            "CREATE TABLE public.loose_parent (id int PRIMARY KEY, v int); \
             CREATE TABLE public.loose_child () INHERITS (public.loose_parent); \
             INSERT INTO public.loose_parent VALUES (1, 1); INSERT INTO public.loose_child VALUES (2, 2); \
             ALTER TABLE public.loose_parent ADD CONSTRAINT lp_small CHECK (v < 50) NOT VALID",
        )
        .await
        .unwrap();
    // A NOT VALID constraint on a table the copy already has is left
    // alone: only tables joining the subscription.
    source
        .batch_execute(
            "ALTER TABLE public.mig_orders ADD CONSTRAINT qty_small CHECK (qty < 1000000) NOT VALID",
        )
        .await
        .unwrap();
    let mut held_back = Vec::new();
    let mut restored = Vec::new();
    let started = Instant::now();
    loop {
        let report = schema::refresh_pipeline(&env.plane, &record)
            .await
            .expect("refresh");
        let refreshed = &report.triples[0].1;
        held_back.extend(refreshed.constraints_held_back.iter().cloned());
        restored.extend(refreshed.constraints_restored.iter().cloned());
        if refreshed.added.is_empty()
            && refreshed.syncing.is_empty()
            && refreshed.waiting_for_stream.is_empty()
            && refreshed.missing_on_target.is_empty()
            && !held_back.is_empty()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the table copy did not finish: {refreshed:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut expected = vec!["public.loose.v_small".to_string()];
    if major >= 18 {
        expected.push("public.loose.v_set".to_string());
    }
    expected.sort();
    held_back.sort();
    restored.sort();
    assert_eq!(held_back, expected);
    assert_eq!(restored, expected);
    source
        .batch_execute(
            "UPDATE public.loose SET v = 1 WHERE id <= 10; DELETE FROM public.loose WHERE id = 50",
        )
        .await
        .unwrap();
    workload.wait_for_more(50).await;
    workload.stop().await;
    caught_up_equal_and_nothing_pending(&source, &clone, state.pipeline.slot.as_str()).await;
    assert_eq!(unvalidated(&clone).await, unvalidated(&source).await);
    assert!(!unvalidated(&clone).await.is_empty());
    let left: i64 = clone
        .query_one(
            "SELECT count(*) FROM clonesync.ddl_deferred_constraint",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "nothing held back any more");
    runtime.teardown(&state).await.unwrap();
}

/// The names of `public.loose`'s constraints not validated.
async fn unvalidated(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT conname::text FROM pg_constraint \
             WHERE conrelid = 'public.loose'::regclass AND NOT convalidated ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect()
}
