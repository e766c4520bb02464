//! What apply groups buy, measured (`groups-bench`, `tools/bench-groups`).
//!
//! 1. **Backlog drain** by group count: a source and a target with the
//!    same pgbench data, the tables split over N (publication, slot,
//!    subscription) triples as setup splits them
//!    ([`clonesync::pipeline::triples::assign_groups`]), streaming; then
//!    every subscription is disabled while pgbench writes for a fixed
//!    time, enabled again, and the time until every slot has confirmed
//!    the backlog's end is measured, beside the rate the source wrote it.
//! 2. **Time to a synced replica** by the clone path: the real setup state
//!    machine (local cloud, moto's engine) with 1 and N groups, started
//!    together with a pgbench load of fixed length; synced = every slot
//!    has confirmed the source's position after the load ended.
//! 3. The peer a user would pick instead, **`pgcopydb clone --follow`**,
//!    on the same source data and load: synced = it has applied up to the
//!    end position set after the load ended, and exited.
//!
//! Every run ends with every table compared by content: a fast run that
//! lost rows is no result. Prints numbers; asserts nothing about speed.

use crate::bench::{connection_args, run_client};
use crate::fixture::{connect, TestEnv, TestServer, LOGICAL};
use clonesync::pg::subscription::{create_subscription_disabled, SubscriptionOptions};
use clonesync::pg::{Endpoint, Lsn, PgName, SlotName, TableName};
use clonesync::pipeline::triples::assign_groups;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio_postgres::Client;

#[derive(Debug, Clone)]
pub struct GroupsBenchOptions {
    pub scale: u32,
    /// How long pgbench writes (the backlog; the load during a clone).
    pub seconds: u32,
    pub clients: u32,
    pub groups: Vec<u32>,
}

/// Servers that take several subscriptions with their parallel workers.
const SETTINGS: &[(&str, &str)] = &[
    ("max_wal_size", "8GB"),
    ("checkpoint_timeout", "30min"),
    ("shared_buffers", "256MB"),
    ("max_wal_senders", "20"),
    ("max_replication_slots", "20"),
    ("max_logical_replication_workers", "16"),
    ("max_worker_processes", "24"),
];

fn settings() -> Vec<(&'static str, &'static str)> {
    // Later settings win: ours after the defaults.
    let mut all = LOGICAL.to_vec();
    all.extend_from_slice(SETTINGS);
    all
}

/// One drain measurement.
#[derive(Debug, Clone)]
pub struct DrainRow {
    pub groups: u32,
    pub transactions: u64,
    pub written_in: Duration,
    pub wal_bytes: u64,
    pub drained_in: Duration,
}

impl DrainRow {
    pub fn header() -> &'static str {
        "| groups | transactions written | source tps (writing) | WAL MB | drain s | drain tps | drain rate / write rate |\n\
         |---:|---:|---:|---:|---:|---:|---:|"
    }

    pub fn report(&self) -> String {
        let write_tps = self.transactions as f64 / self.written_in.as_secs_f64().max(1e-9);
        let drain_tps = self.transactions as f64 / self.drained_in.as_secs_f64().max(1e-9);
        format!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2}x |",
            self.groups,
            self.transactions,
            write_tps,
            self.wal_bytes as f64 / 1e6,
            self.drained_in.as_secs_f64(),
            drain_tps,
            drain_tps / write_tps.max(1e-9)
        )
    }
}

/// One time-to-synced measurement.
#[derive(Debug, Clone)]
pub struct SyncedRow {
    pub method: String,
    pub transactions: u64,
    /// Until the tool said it was set up (clonesync: the setup execution
    /// succeeded; pgcopydb: not reported, `None`).
    pub set_up_in: Option<Duration>,
    /// From the start until the load ended.
    pub load_ended_in: Duration,
    /// `None`: not synced within the bench's patience ([`PATIENCE`]);
    /// `note` says where it stood.
    pub synced_in: Option<Duration>,
    pub note: String,
}

/// How long a peer may take to catch up after the load before the run
/// gives up on it (and says where it stood).
pub const PATIENCE: Duration = Duration::from_secs(300);

impl SyncedRow {
    pub fn header() -> &'static str {
        "| method | transactions during the run | set up in | load ended at | synced at (from start) | synced after the load ended | note |\n\
         |---|---:|---:|---:|---:|---:|---|"
    }

    pub fn report(&self) -> String {
        let seconds = |d: Option<Duration>| {
            d.map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or_else(|| "–".into())
        };
        format!(
            "| {} | {} | {} | {:.1} s | {} | {} | {} |",
            self.method,
            self.transactions,
            seconds(self.set_up_in),
            self.load_ended_in.as_secs_f64(),
            seconds(self.synced_in),
            seconds(
                self.synced_in
                    .map(|synced| synced.saturating_sub(self.load_ended_in))
            ),
            self.note
        )
    }
}

async fn pgbench_init(pgbench: &Path, endpoint: &Endpoint, scale: u32) {
    run_client(
        Command::new(pgbench)
            .args(["-i", "-q", "-s", &scale.to_string()])
            .args(connection_args(endpoint)),
        endpoint,
    )
    .await;
    // History takes only inserts, but a table without a key needs an
    // identity to be published at all.
    connect(endpoint)
        .await
        .batch_execute("ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
        .await
        .expect("replica identity");
}

/// pgbench writing for `seconds` with `clients` (unthrottled).
fn pgbench_load(pgbench: &Path, endpoint: &Endpoint, clients: u32, seconds: u32) -> Child {
    Command::new(pgbench)
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
        ])
        .args(connection_args(endpoint))
        .env(
            "PGPASSWORD",
            endpoint
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start pgbench")
}

async fn pgbench_done(load: Child) -> u64 {
    let output = load.wait_with_output().await.expect("pgbench ran");
    assert!(output.status.success(), "pgbench failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("pgbench reports the transactions it processed")
}

async fn current_lsn(client: &Client) -> Lsn {
    clonesync::pg::wal::current_lsn(client)
        .await
        .expect("current LSN")
}

/// Until every slot named has confirmed `lsn`.
async fn wait_confirmed(source: &Client, slots: &[String], lsn: Lsn) {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let rows = source
            .query(
                "SELECT count(*) FROM pg_replication_slots \
                 WHERE slot_name = ANY($1) AND confirmed_flush_lsn >= $2::text::pg_lsn",
                &[&slots, &lsn.to_string()],
            )
            .await
            .expect("read slots");
        if rows[0].get::<_, i64>(0) == slots.len() as i64 {
            return;
        }
        assert!(Instant::now() < deadline, "not confirmed within an hour");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn assert_equal(source: &Client, target: &Client, what: &str) {
    let tables = crate::tables_in(source, &["public"]).await;
    let (states, differing) = crate::compare_tables(source, target, &tables).await;
    assert_eq!(states.len(), 4, "{what}: the four pgbench tables");
    assert!(differing.is_empty(), "{what}: tables differ: {differing:?}");
}

async fn history_rows(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM pgbench_history", &[])
        .await
        .map(|r| r.get::<_, i64>(0))
        .unwrap_or(-1)
}

async fn sizes(client: &Client) -> Vec<(TableName, i64)> {
    clonesync::pg::server::tables_with_size(client, &clonesync::pipeline::Scope::AllTables)
        .await
        .expect("table sizes")
}

/// Part 1: the drain of a fixed-time backlog with `groups` subscriptions.
pub async fn drain(options: &GroupsBenchOptions, groups: u32) -> DrainRow {
    let source_server = TestServer::start_with(&settings()).await;
    let target_server = TestServer::start_with(&settings()).await;
    let (source_endpoint, target_endpoint) = (source_server.endpoint(), target_server.endpoint());
    let pgbench = source_server.server.binaries().program("pgbench");
    pgbench_init(&pgbench, &source_endpoint, options.scale).await;
    pgbench_init(&pgbench, &target_endpoint, options.scale).await;
    let source = connect(&source_endpoint).await;
    let target = connect(&target_endpoint).await;
    let version = clonesync::pg::server::facts(&target)
        .await
        .expect("facts")
        .version_num;
    let assignment = assign_groups(&sizes(&source).await, groups, &BTreeMap::new());
    let mut slots = Vec::new();
    let mut names = Vec::new();
    for (index, tables) in assignment.iter().enumerate() {
        let name = format!("bench_g{}", index + 1);
        let list: Vec<String> = tables.iter().map(TableName::quoted).collect();
        source
            .batch_execute(&format!(
                "CREATE PUBLICATION {name} FOR TABLE {}",
                list.join(", ")
            ))
            .await
            .expect("publication");
        source
            .execute(
                "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                &[&name],
            )
            .await
            .expect("slot");
        create_subscription_disabled(
            &target,
            &PgName::new(name.clone()).unwrap(),
            &source_endpoint.conninfo(),
            &PgName::new(name.clone()).unwrap(),
            &SlotName::new(name.clone()).unwrap(),
            SubscriptionOptions::for_version(version),
        )
        .await
        .expect("subscription");
        slots.push(name.clone());
        names.push(name);
    }
    let set_all = |enabled: bool| {
        let target = &target;
        let names = names.clone();
        async move {
            for name in names {
                target
                    .batch_execute(&format!(
                        "ALTER SUBSCRIPTION {name} {}",
                        if enabled { "ENABLE" } else { "DISABLE" }
                    ))
                    .await
                    .expect("alter subscription");
            }
        }
    };
    set_all(true).await;
    wait_confirmed(&source, &slots, current_lsn(&source).await).await;
    set_all(false).await;
    // The workers may still hold their slots for a moment.
    loop {
        let active: i64 = source
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = ANY($1) AND active",
                &[&slots],
            )
            .await
            .unwrap()
            .get(0);
        if active == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = current_lsn(&source).await;
    let began = Instant::now();
    let transactions = pgbench_done(pgbench_load(
        &pgbench,
        &source_endpoint,
        options.clients,
        options.seconds,
    ))
    .await;
    let written_in = began.elapsed();
    let end = current_lsn(&source).await;
    set_all(true).await;
    let enabled = Instant::now();
    wait_confirmed(&source, &slots, end).await;
    let drained_in = enabled.elapsed();
    assert_equal(&source, &target, &format!("{groups} group(s)")).await;
    DrainRow {
        groups,
        transactions,
        written_in,
        wal_bytes: start.bytes_until(end),
        drained_in,
    }
}

/// Part 2: the real setup with `groups` apply groups, started with a
/// pgbench load of `options.seconds`.
pub async fn clone_path(options: &GroupsBenchOptions, groups: u32) -> SyncedRow {
    let env = TestEnv::start_with(&settings()).await;
    let endpoint = env.source_endpoint();
    let pgbench = env.source.binaries().program("pgbench");
    pgbench_init(&pgbench, &endpoint, options.scale).await;
    let runtime =
        clonesync_local::LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
            .await
            .expect("local runtime");
    let mut input = runtime.request(
        "bench",
        serde_json::json!({"kind": "all_tables"}),
        crate::fixture::DB,
        clonesync::pipeline::Waits::default(),
    );
    input["pipeline"]["apply_groups"] = serde_json::json!(groups);
    let started = Instant::now();
    let load = pgbench_load(&pgbench, &endpoint, options.clients, options.seconds);
    let outcome = runtime
        .run("setup-bench", &input, &mut |_| {})
        .await
        .expect("setup ran");
    assert!(
        outcome.succeeded(),
        "{:?} {:?}",
        outcome.error,
        outcome.cause
    );
    let set_up_in = started.elapsed();
    let transactions = pgbench_done(load).await;
    let load_ended_in = started.elapsed();
    let state = outcome.state().expect("state");
    let slots: Vec<String> = state.triples().iter().map(|t| t.slot.to_string()).collect();
    let source = connect(&endpoint).await;
    wait_confirmed(&source, &slots, current_lsn(&source).await).await;
    let synced_in = started.elapsed();
    let target = connect(&env.plane.clone_login(state.clone_info().expect("clone"))).await;
    assert_equal(&source, &target, &format!("clone path, {groups} group(s)")).await;
    drop(target);
    runtime.teardown(&state).await.expect("teardown");
    SyncedRow {
        method: format!("clonesync clone path, apply_groups = {groups}"),
        transactions,
        set_up_in: Some(set_up_in),
        load_ended_in,
        synced_in: Some(synced_in),
        note: format!("{} triple(s), every table equal", slots.len()),
    }
}

/// Part 3: `pgcopydb clone --follow` on the same data and load.
pub async fn pgcopydb(options: &GroupsBenchOptions, work: &Path) -> SyncedRow {
    let source_server = TestServer::start_with(&settings()).await;
    let target_server = TestServer::start_with(&settings()).await;
    let (source_endpoint, target_endpoint) = (source_server.endpoint(), target_server.endpoint());
    let pgbench = source_server.server.binaries().program("pgbench");
    pgbench_init(&pgbench, &source_endpoint, options.scale).await;
    // pgcopydb makes the schema itself: an empty target database.
    // Passwords reach libpq through a password file that lives only as
    // long as this run, never the command line.
    let passfile = work.join("pgpass");
    let line = |e: &Endpoint| {
        format!(
            "{}:{}:*:{}:{}\n",
            e.host,
            e.port,
            e.user,
            e.password.as_ref().map(|p| p.expose()).unwrap_or_default()
        )
    };
    std::fs::write(
        &passfile,
        format!("{}{}", line(&source_endpoint), line(&target_endpoint)),
    )
    .expect("password file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600))
            .expect("password file mode");
    }
    let uri = |e: &Endpoint| format!("postgres://{}@{}:{}/{}", e.user, e.host, e.port, e.dbname);
    let dir: PathBuf = work.join("pgcopydb");
    let pgcopydb = |args: &[&str]| {
        let mut command = Command::new("pgcopydb");
        command
            .args(args)
            .env("PGPASSFILE", &passfile)
            .env("PGCOPYDB_SOURCE_PGURI", uri(&source_endpoint))
            .env("PGCOPYDB_TARGET_PGURI", uri(&target_endpoint))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    };
    let started = Instant::now();
    let load = pgbench_load(&pgbench, &source_endpoint, options.clients, options.seconds);
    let mut clone = pgcopydb(&[
        "clone",
        "--follow",
        "--dir",
        dir.to_str().expect("a UTF-8 path"),
        "--table-jobs",
        "2",
        "--index-jobs",
        "2",
    ])
    .spawn()
    .expect("start pgcopydb (install Debian's pgcopydb and postgresql-15-wal2json)");
    let transactions = pgbench_done(load).await;
    let load_ended_in = started.elapsed();
    // The load is over: follow up to the source's position now, then stop.
    let status = pgcopydb(&["stream", "sentinel", "set", "endpos", "--current"])
        .status()
        .await
        .expect("pgcopydb sentinel");
    assert!(
        status.success(),
        "pgcopydb stream sentinel set endpos failed"
    );
    let waited = tokio::time::timeout(PATIENCE, clone.wait()).await;
    let synced_in = match &waited {
        Ok(Ok(exit)) if exit.success() => Some(started.elapsed()),
        _ => None,
    };
    let source = connect(&source_endpoint).await;
    let note = match synced_in {
        Some(_) => {
            // The peer's result is reported, not asserted: a run of it that
            // lost rows is a finding about it, not a failed bench.
            let target = connect(&target_endpoint).await;
            let tables = crate::tables_in(&source, &["public"]).await;
            let (_, differing) = crate::compare_tables(&source, &target, &tables).await;
            if differing.is_empty() {
                "reached the end position and exited; every table equal".to_string()
            } else {
                format!(
                    "reached the end position and exited, but {} of {} tables DIFFER: {}",
                    differing.len(),
                    tables.len(),
                    differing
                        .iter()
                        .map(|(s, t)| format!(
                            "{} {} rows on the source, {} on the target",
                            s.table, s.rows, t.rows
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        }
        None => {
            // Where it stood: pgcopydb keeps its progress in a sentinel
            // table on the source.
            let sentinel = source
                .query_opt(
                    "SELECT endpos::text, replay_lsn::text FROM pgcopydb.sentinel",
                    &[],
                )
                .await
                .ok()
                .flatten()
                .map(|r| {
                    format!(
                        "end position {}, replayed to {}",
                        r.get::<_, String>(0),
                        r.get::<_, String>(1)
                    )
                })
                .unwrap_or_else(|| "no sentinel".into());
            let target = connect(&target_endpoint).await;
            format!(
                "not synced {} s after the load ended ({}): {sentinel}; pgbench_history {} rows on the target of {} on the source",
                PATIENCE.as_secs(),
                match &waited {
                    Err(_) => "still running".to_string(),
                    Ok(Ok(exit)) => format!("exited with {exit}"),
                    Ok(Err(e)) => format!("could not be waited for: {e}"),
                },
                history_rows(&target).await,
                history_rows(&source).await
            )
        }
    };
    let _ = clone.kill().await;
    let _ = std::fs::remove_file(&passfile);
    SyncedRow {
        method: "pgcopydb clone --follow (0.10, wal2json)".into(),
        transactions,
        set_up_in: None,
        load_ended_in,
        synced_in,
        note,
    }
}
