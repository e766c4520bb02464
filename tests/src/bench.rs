//! Time to a synced replica: the clone path against the standard path
//! (an empty target with the schema, `copy_data = true`), on a pgbench data
//! set of a chosen scale, under a light pgbench write load, in one run.
//!
//! Prints numbers; asserts nothing about speed. The only checks are that
//! both replicas really end up equal to the source.

use crate::fixture::{connect, TestServer, LOGICAL};
use crate::TestEnv;
use clonesync::pg::{Endpoint, TableName};
use clonesync::pipeline::PipelineSpec;
use clonesync::pipeline::Scope;
use clonesync::steps::{clone, prepare_source};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio_postgres::Client;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// pgbench scale factor (1 = 100 000 accounts, about 15 MB).
    pub scale: u32,
    /// Write load during the run, in pgbench transactions per second.
    pub load_tps: u32,
}

#[derive(Debug, Clone)]
pub struct BenchResult {
    pub scale: u32,
    pub source_bytes: i64,
    pub load_transactions: i64,
    pub clone_path: Duration,
    pub clone_promoted_to_streaming: Duration,
    pub copy_data_path: Duration,
}

impl BenchResult {
    pub fn report(&self) -> String {
        let secs = |d: Duration| d.as_secs_f64();
        format!(
            "scale {} ({:.0} MB), light load {} pgbench transactions during the run\n\
             clone path to synced replica:        {:>8.2} s\n\
             copy_data path to synced replica:    {:>8.2} s\n\
             ratio (copy_data / clone):           {:>8.2}x\n\
             clone promoted -> streaming:         {:>8.3} s",
            self.scale,
            self.source_bytes as f64 / 1e6,
            self.load_transactions,
            secs(self.clone_path),
            secs(self.copy_data_path),
            secs(self.copy_data_path) / secs(self.clone_path).max(1e-9),
            secs(self.clone_promoted_to_streaming),
        )
    }
}

const BENCH_SETTINGS: &[(&str, &str)] = &[
    ("max_wal_size", "8GB"),
    ("checkpoint_timeout", "30min"),
    ("shared_buffers", "256MB"),
];

pub async fn run(options: &BenchOptions) -> BenchResult {
    let mut settings = LOGICAL.to_vec();
    settings.extend_from_slice(BENCH_SETTINGS);
    let env = TestEnv::start_with(&settings).await;
    let source_endpoint = env.source_endpoint();
    let pgbench = env.source.binaries().program("pgbench");
    eprintln!("loading pgbench data at scale {} ...", options.scale);
    run_client(
        Command::new(&pgbench)
            .args(["-i", "-q", "-s", &options.scale.to_string()])
            .args(connection_args(&source_endpoint)),
        &source_endpoint,
    )
    .await;
    let source = connect(&source_endpoint).await;
    source
        .batch_execute(
            // history has no key; pgbench only inserts into it, but the
            // publication needs an identity for preflight to pass.
            "ALTER TABLE pgbench_history REPLICA IDENTITY FULL; \
             CREATE TABLE bench_marker (id int PRIMARY KEY, token text NOT NULL); \
             INSERT INTO bench_marker VALUES (1, 'start'); CHECKPOINT",
        )
        .await
        .expect("prepare bench source");
    let source_bytes: i64 = source
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .unwrap()
        .get(0);
    let tables = crate::tables_in(&source, &["public"]).await;

    let load = start_load(&pgbench, &source_endpoint, options.load_tps);
    let committed_before: i64 = history_rows(&source).await;

    // The clone path.
    let spec = PipelineSpec::with_defaults("bench", Scope::AllTables).unwrap();
    eprintln!("clone path ...");
    let started = Instant::now();
    let mut admin = connect(&source_endpoint).await;
    env.preflight(&spec).await.expect("preflight");
    let prepared = prepare_source::run(&mut admin, &spec)
        .await
        .expect("prepare");
    let info = clone::run(&env.plane, &spec).await.expect("clone");
    let promoted = Instant::now();
    let clone_client = connect(&env.plane.clone_login(&info)).await;
    crate::pipeline::attach(
        &env.plane,
        &admin,
        &clone_client,
        &info,
        &spec,
        prepared.consistent_lsn,
        &source_endpoint.conninfo(),
    )
    .await;
    let streaming = Instant::now();
    wait_marker(&source, &clone_client).await;
    let clone_path = started.elapsed();

    // The standard path: empty target, schema, copy_data = true.
    eprintln!("copy_data path ...");
    let started = Instant::now();
    let target = TestServer::start_with(LOGICAL).await;
    copy_schema(&env, &source_endpoint, &target.endpoint()).await;
    let target_client = target.client().await;
    let publication = spec.publication.quoted();
    create_standard_subscription(&target_client, &source_endpoint, &publication).await;
    wait_tables_ready(&target_client).await;
    wait_marker(&source, &target_client).await;
    let copy_data_path = started.elapsed();

    let load_transactions = history_rows(&source).await - committed_before;
    stop_load(load).await;
    // Both replicas equal the source, table by table.
    wait_marker(&source, &clone_client).await;
    wait_marker(&source, &target_client).await;
    for (name, replica) in [("clone", &clone_client), ("copy_data", &target_client)] {
        for table in &tables {
            let a = content_sum(&source, table).await;
            let b = content_sum(replica, table).await;
            assert_eq!(a, b, "{name} replica differs from the source in {table}");
        }
    }
    target_client
        .batch_execute("ALTER SUBSCRIPTION bench_standard DISABLE; ALTER SUBSCRIPTION bench_standard SET (slot_name = NONE); DROP SUBSCRIPTION bench_standard")
        .await
        .unwrap();
    let _ = source
        .execute("SELECT pg_drop_replication_slot('bench_standard')", &[])
        .await;
    BenchResult {
        scale: options.scale,
        source_bytes,
        load_transactions,
        clone_path,
        clone_promoted_to_streaming: streaming - promoted,
        copy_data_path,
    }
}

pub fn connection_args(endpoint: &Endpoint) -> Vec<String> {
    vec![
        "-h".into(),
        endpoint.host.clone(),
        "-p".into(),
        endpoint.port.to_string(),
        "-U".into(),
        endpoint.user.clone(),
        endpoint.dbname.clone(),
    ]
}

pub async fn run_client(command: &mut Command, endpoint: &Endpoint) {
    let password = endpoint
        .password
        .as_ref()
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    let output = command
        .env("PGPASSWORD", password)
        .stdout(Stdio::null())
        .output()
        .await
        .expect("run client program");
    assert!(
        output.status.success(),
        "client program failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn start_load(pgbench: &std::path::Path, endpoint: &Endpoint, tps: u32) -> Child {
    let password = endpoint
        .password
        .as_ref()
        .map(|p| p.expose().to_string())
        .unwrap_or_default();
    Command::new(pgbench)
        .args([
            "-n",
            "-c",
            "2",
            "-R",
            &tps.max(1).to_string(),
            "-T",
            "36000",
        ])
        .args(connection_args(endpoint))
        .env("PGPASSWORD", password)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start pgbench load")
}

async fn stop_load(mut load: Child) {
    let _ = load.kill().await;
}

async fn history_rows(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM pgbench_history", &[])
        .await
        .unwrap()
        .get(0)
}

/// `pg_dump --schema-only` of the source into the target, as a user of the
/// standard path would.
async fn copy_schema(env: &TestEnv, source: &Endpoint, target: &Endpoint) {
    let dump_file = env.root_path.join("schema.sql");
    run_client(
        Command::new(env.source.binaries().program("pg_dump"))
            .args([
                "--schema-only",
                "--no-publications",
                "--no-subscriptions",
                "-f",
            ])
            .arg(&dump_file)
            .args(connection_args(source)),
        source,
    )
    .await;
    run_client(
        Command::new(env.source.binaries().program("psql"))
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&dump_file)
            .args(connection_args(target)),
        target,
    )
    .await;
}

async fn create_standard_subscription(target: &Client, source: &Endpoint, publication: &str) {
    let conninfo = source.conninfo();
    let sql = format!(
        "CREATE SUBSCRIPTION bench_standard CONNECTION {} PUBLICATION {publication} WITH (copy_data = true)",
        clonesync::pg::quote::literal(conninfo.expose())
    );
    target
        .batch_execute(&sql)
        .await
        .expect("create standard subscription");
}

async fn wait_tables_ready(target: &Client) {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "initial copy not done within {SYNC_TIMEOUT:?}"
        );
        let pending: i64 = target
            .query_one(
                "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let total: i64 = target
            .query_one("SELECT count(*) FROM pg_subscription_rel", &[])
            .await
            .unwrap()
            .get(0);
        if total > 0 && pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Generous: the copy_data path at a large scale copies for minutes.
const SYNC_TIMEOUT: Duration = Duration::from_secs(1800);

async fn wait_marker(source: &Client, target: &Client) {
    let marker = TableName::new("public", "bench_marker").unwrap();
    crate::compare::wait_for_token(source, target, &marker, SYNC_TIMEOUT)
        .await
        .expect("replica catches up");
}

/// Row count and an order-independent sum of row hashes: a content check
/// that does not build one huge string for a table of millions of rows.
async fn content_sum(client: &Client, table: &TableName) -> (i64, String) {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum(hashtext(t::text)::numeric), 0)::text FROM {} t",
                table.quoted()
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}
