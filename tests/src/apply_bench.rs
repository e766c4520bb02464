//! How fast a subscription drains a backlog, by subscription options, on
//! the PostgreSQL major the harness runs (`CLONESYNC_PG_MAJOR`).
//!
//! Per option set: a source and a target with the same pgbench data, a
//! subscription with those options, streaming; then the subscription is
//! disabled while the source writes (a) pgbench's small transactions for a
//! fixed time, (b) a few transactions that each update every account row
//! (larger than `logical_decoding_work_mem`, so `streaming` matters), and
//! the time from `ENABLE` until a token written after the backlog is on the
//! target is measured for each. Every table is then compared by content, so
//! a fast drain that lost rows cannot pass.
//!
//! Prints numbers; asserts nothing about speed.

use crate::bench::{connection_args, run_client};
use crate::fixture::{connect, TestServer, LOGICAL};
use clonesync::pg::subscription::{create_subscription_disabled, Streaming, SubscriptionOptions};
use clonesync::pg::{PgName, SlotName};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;
use tokio_postgres::Client;

#[derive(Debug, Clone)]
pub struct ApplyBenchOptions {
    pub scale: u32,
    /// How long pgbench writes the small-transaction backlog.
    pub seconds: u32,
    pub clients: u32,
    /// How many whole-table update transactions make the large backlog.
    pub large_transactions: u32,
}

#[derive(Debug, Clone)]
pub struct Drain {
    pub wal_bytes: u64,
    pub transactions: u64,
    /// How long the source took to write it.
    pub written_in: Duration,
    pub drained_in: Duration,
    /// What the source's slot wrote to its own disk while decoding this
    /// backlog (`pg_stat_replication_slots.spill_bytes`), and what it sent
    /// before commit (`stream_bytes`).
    pub spilled_bytes: i64,
    pub streamed_bytes: i64,
}

#[derive(Debug, Clone)]
pub struct ApplyBenchRow {
    pub major: u32,
    pub label: String,
    pub small: Drain,
    pub large: Drain,
}

impl ApplyBenchRow {
    pub fn report(&self) -> String {
        let mbps = |d: &Drain| d.wal_bytes as f64 / 1e6 / d.drained_in.as_secs_f64().max(1e-9);
        let tps = |n: u64, t: Duration| n as f64 / t.as_secs_f64().max(1e-9);
        format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.0} MB in {:.2} s | {:.1} | {:.0} / {:.0} |",
            self.major,
            self.label,
            tps(self.small.transactions, self.small.written_in),
            tps(self.small.transactions, self.small.drained_in),
            mbps(&self.small),
            self.small.drained_in.as_secs_f64(),
            self.large.wal_bytes as f64 / 1e6,
            self.large.drained_in.as_secs_f64(),
            mbps(&self.large),
            self.large.spilled_bytes as f64 / 1e6,
            self.large.streamed_bytes as f64 / 1e6,
        )
    }

    pub fn header() -> &'static str {
        "| major | options | source tps (writing) | drain tps | small: WAL MB/s drained | small: drain s | large: backlog | large: WAL MB/s drained | large: MB spilled on the source / streamed |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|"
    }
}

/// The option sets worth measuring on a major: the default of 15-17
/// (`streaming = off`), `binary` on its own, and each streaming mode the
/// version has, with `binary` also tried on the fastest one (`parallel`).
pub fn option_sets(major: u32) -> Vec<(String, SubscriptionOptions)> {
    let mut sets = vec![
        (Streaming::Off, false),
        (Streaming::Off, true),
        (Streaming::On, false),
    ];
    if major >= 16 {
        sets.push((Streaming::Parallel, false));
        sets.push((Streaming::Parallel, true));
    }
    sets.into_iter()
        .map(|(streaming, binary)| {
            let label = format!(
                "streaming = {}, binary = {binary}",
                match streaming {
                    Streaming::Off => "off",
                    Streaming::On => "on",
                    Streaming::Parallel => "parallel",
                }
            );
            (
                label,
                SubscriptionOptions {
                    binary,
                    streaming,
                    as_table_owner: false,
                },
            )
        })
        .collect()
}

const SETTINGS: &[(&str, &str)] = &[
    ("max_wal_size", "8GB"),
    ("checkpoint_timeout", "30min"),
    ("shared_buffers", "256MB"),
];

pub async fn run(
    options: &ApplyBenchOptions,
    label: &str,
    sub: SubscriptionOptions,
) -> ApplyBenchRow {
    let mut settings = LOGICAL.to_vec();
    settings.extend_from_slice(SETTINGS);
    let source_server = TestServer::start_with(&settings).await;
    let target_server = TestServer::start_with(&settings).await;
    let source_endpoint = source_server.endpoint();
    let target_endpoint = target_server.endpoint();
    let pgbench = source_server.server.binaries().program("pgbench");
    for endpoint in [&source_endpoint, &target_endpoint] {
        run_client(
            Command::new(&pgbench)
                .args(["-i", "-q", "-s", &options.scale.to_string()])
                .args(connection_args(endpoint)),
            endpoint,
        )
        .await;
    }
    let source = connect(&source_endpoint).await;
    let target = connect(&target_endpoint).await;
    let prepare = "ALTER TABLE pgbench_history REPLICA IDENTITY FULL; \
                   CREATE TABLE bench_marker (id int PRIMARY KEY, token text NOT NULL); \
                   INSERT INTO bench_marker VALUES (1, 'start')";
    source.batch_execute(prepare).await.expect("prepare source");
    target.batch_execute(prepare).await.expect("prepare target");
    // One statement per call: a slot cannot be made in a transaction that
    // wrote, and a multi-statement string is one transaction.
    for sql in [
        "CREATE PUBLICATION bench FOR ALL TABLES",
        "SELECT pg_create_logical_replication_slot('bench', 'pgoutput')",
        "CHECKPOINT",
    ] {
        source
            .batch_execute(sql)
            .await
            .expect("publication and slot");
    }
    create_subscription_disabled(
        &target,
        &PgName::new("bench").unwrap(),
        &source_endpoint.conninfo(),
        &PgName::new("bench").unwrap(),
        &SlotName::new("bench").unwrap(),
        sub,
    )
    .await
    .expect("create subscription");
    target
        .batch_execute("ALTER SUBSCRIPTION bench ENABLE")
        .await
        .unwrap();
    // Streaming before the first backlog.
    let token = "streaming";
    source
        .execute("UPDATE bench_marker SET token = $1 WHERE id = 1", &[&token])
        .await
        .unwrap();
    drain_token(&target, token, Instant::now()).await;

    let small = backlog(&source, &target, || async {
        let started = Instant::now();
        let output = Command::new(&pgbench)
            .args([
                "-n",
                "-c",
                &options.clients.to_string(),
                "-j",
                "2",
                "-T",
                &options.seconds.to_string(),
            ])
            .args(connection_args(&source_endpoint))
            .env(
                "PGPASSWORD",
                source_endpoint.password.as_ref().unwrap().expose(),
            )
            .stdout(Stdio::piped())
            .output()
            .await
            .expect("run pgbench");
        assert!(output.status.success(), "pgbench failed");
        (
            processed(&String::from_utf8_lossy(&output.stdout)),
            started.elapsed(),
        )
    })
    .await;
    let large = backlog(&source, &target, || async {
        let started = Instant::now();
        for _ in 0..options.large_transactions {
            source
                .batch_execute("UPDATE pgbench_accounts SET abalance = abalance + 1")
                .await
                .expect("large transaction");
        }
        (u64::from(options.large_transactions), started.elapsed())
    })
    .await;

    // A drain that lost or repeated rows is no result.
    let tables = crate::tables_in(&source, &["public"]).await;
    let (_, differing) = crate::compare_tables(&source, &target, &tables).await;
    assert!(
        differing.is_empty(),
        "{label}: tables differ after the drain: {differing:?}"
    );
    ApplyBenchRow {
        major: crate::fixture::server_major(&source).await,
        label: label.to_string(),
        small,
        large,
    }
}

/// Disable the subscription, let `write` make a backlog, enable it and
/// time the drain.
async fn backlog<F, Fut>(source: &Client, target: &Client, write: F) -> Drain
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = (u64, Duration)>,
{
    target
        .batch_execute("ALTER SUBSCRIPTION bench DISABLE")
        .await
        .unwrap();
    // The worker may still apply what it had; wait until the slot is free.
    while slot_active(source).await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = current_lsn(source).await;
    let (spilled_before, streamed_before) = slot_spill(source).await;
    let (transactions, written_in) = write().await;
    let token = format!("{:?}", Instant::now());
    source
        .execute("UPDATE bench_marker SET token = $1 WHERE id = 1", &[&token])
        .await
        .unwrap();
    let end = current_lsn(source).await;
    target
        .batch_execute("ALTER SUBSCRIPTION bench ENABLE")
        .await
        .unwrap();
    let enabled = Instant::now();
    let drained_in = drain_token(target, &token, enabled).await;
    // The statistics are reported by the WAL sender a little after it
    // decoded; give them a moment.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (spilled, streamed) = slot_spill(source).await;
    Drain {
        wal_bytes: end - start,
        transactions,
        written_in,
        drained_in,
        spilled_bytes: spilled - spilled_before,
        streamed_bytes: streamed - streamed_before,
    }
}

async fn drain_token(target: &Client, token: &str, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(1800);
    loop {
        assert!(
            Instant::now() < deadline,
            "the backlog did not drain within 30 min"
        );
        let seen: String = target
            .query_one("SELECT token FROM bench_marker WHERE id = 1", &[])
            .await
            .unwrap()
            .get(0);
        if seen == token {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn slot_spill(source: &Client) -> (i64, i64) {
    let row = source
        .query_one(
            "SELECT coalesce((SELECT spill_bytes FROM pg_stat_replication_slots WHERE slot_name = 'bench'), 0), \
                    coalesce((SELECT stream_bytes FROM pg_stat_replication_slots WHERE slot_name = 'bench'), 0)",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn slot_active(source: &Client) -> bool {
    source
        .query_one(
            "SELECT active FROM pg_replication_slots WHERE slot_name = 'bench'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn current_lsn(source: &Client) -> u64 {
    let lsn: postgres_types::PgLsn = source
        .query_one("SELECT pg_current_wal_lsn()", &[])
        .await
        .unwrap()
        .get(0);
    u64::from(lsn)
}

/// "number of transactions actually processed: N" from pgbench's report.
fn processed(report: &str) -> u64 {
    report
        .lines()
        .find_map(|line| line.strip_prefix("number of transactions actually processed: "))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("pgbench reports the transactions it processed")
}
