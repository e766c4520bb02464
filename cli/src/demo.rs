//! `clonesync demo`: the whole pipeline on this machine, nothing to
//! configure. A source server with the demo schema and a write load; the
//! real setup state machine run by moto's engine, its tasks served by the
//! handlers in this process; replication until Ctrl-C or `--duration`; a
//! per-table comparison; teardown of everything it made.

use crate::args::DemoOptions;
use crate::show;
use clonesync::error::{Error, Result};
use clonesync::monitor;
use clonesync::pg::{self, Secret, SessionSettings};
use clonesync::pipeline::Waits;
use clonesync::ports::ControlPlane;
use clonesync_local::compare::{compare_tables, tables_in, wait_for_marker};
use clonesync_local::runtime::LocalRuntime;
use clonesync_local::workload::{create_schema, Workload};
use clonesync_local::{moto, LocalControlPlane, LocalServer, RunAs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

const DATABASE: &str = "shop";
const SUPERUSER: &str = "clonesync_admin";
const PIPELINE: &str = "demo";
const SCHEMAS: &[&str] = &["public", "Sales Schema"];

/// A source that logical replication and the local clone can use.
const SOURCE_SETTINGS: &[(&str, &str)] = &[
    ("wal_level", "logical"),
    ("max_wal_senders", "10"),
    ("max_replication_slots", "10"),
    ("max_logical_replication_workers", "4"),
    ("max_worker_processes", "8"),
    // Subscriber feedback every second, so the slot's position (the lag
    // shown) follows closely.
    ("wal_receiver_status_interval", "1s"),
    // A throwaway server: durability buys nothing here.
    ("fsync", "off"),
];

/// A password for this run only; it is never printed.
fn fresh_password() -> Secret {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Secret::new(format!("demo-{nanos:x}-{:x}", std::process::id()))
}

/// Stops every server under the work directory and removes it, also when
/// the demo fails half-way.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn create(requested: Option<&Path>, keep: bool) -> Result<WorkDir> {
        let path = match requested {
            Some(path) => path.to_path_buf(),
            None => std::env::temp_dir().join(format!(
                "clonesync-demo-{}-{}",
                std::process::id(),
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            )),
        };
        std::fs::create_dir_all(&path).map_err(|e| Error::local_file("create", &path, e))?;
        // The servers run as another account, which must enter it.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o711))
            .map_err(|e| Error::local_file("chmod", &path, e))?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let Ok(bins) = clonesync_local::PgBinaries::locate() else {
            return;
        };
        let run_as = RunAs::detect().ok().flatten();
        let clones = self.path.join("clones");
        let dirs = std::fs::read_dir(&clones)
            .map(|e| e.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for dir in dirs.into_iter().chain([self.path.join("source")]) {
            if dir.join("data").is_dir() {
                LocalServer::open(dir, 0, SUPERUSER, Secret::new(""), bins.clone(), run_as)
                    .stop_now();
            }
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub async fn run(options: DemoOptions) -> Result<bool> {
    let wall = Instant::now();
    // Ctrl-C is handled from the start: it ends the replication phase, and
    // before that it lets the current phase finish, so that teardown always
    // runs and nothing is left half-made.
    let stop =
        crate::interrupt::on_ctrl_c("finishing the current step, then comparing and tearing down");
    if !moto::moto_server().is_file() {
        say!("installing {} (once) ...", moto::MOTO_REQUIREMENT);
    }
    moto::ensure_installed()?;
    let work = WorkDir::create(options.work_dir.as_deref(), options.keep)?;
    say!("clonesync demo in {}", work.path.display());

    // 1. The source, its data and the write load.
    let mut source = LocalServer::init(
        &work.path.join("source"),
        SUPERUSER,
        fresh_password(),
        SOURCE_SETTINGS,
    )
    .await?;
    source.start().await?;
    let session = SessionSettings::default();
    pg::connect(&source.endpoint("postgres"), &session)
        .await?
        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
        .await
        .map_err(|e| pg::sqlstate::classify("create the demo database", e))?;
    let endpoint = source.endpoint(DATABASE);
    let admin = pg::connect(&endpoint, &session).await?;
    create_schema(&admin).await?;
    let tables = tables_in(&admin, SCHEMAS).await?;
    let load = Workload::start(endpoint.clone(), 3, 7, Duration::from_millis(5));
    load.wait_for_more(50).await?;
    if stop.load(Ordering::Relaxed) {
        load.stop().await?;
        return Ok(false);
    }
    say!(
        "  source: PostgreSQL on 127.0.0.1:{}, database {DATABASE:?}, {} tables, write load of 3 writers running",
        source.port,
        tables.len()
    );

    // 2. The local cloud and the state machine.
    let clones = work.path.join("clones");
    std::fs::create_dir_all(&clones).map_err(|e| Error::local_file("create", &clones, e))?;
    if let Some(run_as) = source.run_as() {
        run_as.own(&clones)?;
    }
    let plane = LocalControlPlane::for_server(&source, DATABASE, &clones);
    let runtime = LocalRuntime::start(plane, &work.path.join("cloud")).await?;
    say!("  moto: Step Functions (executing statemachine/setup.asl.json) and DynamoDB; Lambda tasks served in this process");
    let input = runtime.request(
        PIPELINE,
        serde_json::json!({"kind": "all_tables"}),
        DATABASE,
        Waits::default(),
    );
    let name = format!("demo-{}", std::process::id());
    say!("setup: execution {name}");
    let started = SystemTime::now();
    let outcome = runtime
        .run(&name, &input, &mut show::progress(started))
        .await?;
    show::outcome(&outcome);
    if !outcome.succeeded() {
        load.stop().await?;
        return Ok(false);
    }
    let state = outcome.state()?;
    let clone_ready = runtime.cloud.clone_ready_at(&state.clone_id);
    if let (Some(ready), Some(streaming)) = (clone_ready, outcome.exited_at("Verify")) {
        say!(
            "  clone available -> subscription streaming: {}",
            show::millis(streaming.duration_since(ready).unwrap_or_default())
        );
    }

    // 3. Replicate until Ctrl-C or the duration.
    match options.duration {
        Some(d) => say!("replicating for {} s (Ctrl-C ends it sooner)", d.as_secs()),
        None => say!("replicating until Ctrl-C"),
    }
    let target = pg::connect(
        &runtime
            .cloud
            .control_plane()
            .clone_endpoint(state.clone_info()?)
            .await?,
        &session,
    )
    .await?;
    let pipeline = state.pipeline.id.as_str();
    // The lag monitor's own run (registry, then every slot and the
    // subscription), as the lag-monitor function does it each minute.
    let monitor = || async {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        monitor::run(&*runtime.cloud, now_ms)
            .await
            .map(|(report, _)| report)
    };
    let streaming_since = Instant::now();
    // A reading each second, however long a reading takes on a loaded
    // machine (a sleep after each would drift).
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed)
        && options
            .duration
            .is_none_or(|d| streaming_since.elapsed() < d)
    {
        every_second.tick().await;
        let report = monitor().await?;
        show::streaming(
            &report,
            pipeline,
            streaming_since.elapsed(),
            Some(load.committed()),
        );
    }

    // 4. Stop writing, catch up, compare.
    let stats = load.stop().await?;
    say!(
        "load stopped: {} transactions committed, {} rolled back on purpose",
        stats.committed,
        stats.rolled_back
    );
    let caught_up = wait_for_marker(&admin, &target, Duration::from_secs(120)).await?;
    say!("  caught up in {}", show::millis(caught_up));
    // The slot's confirmed position follows the apply with the subscriber's
    // feedback interval: show the lag reaching zero.
    let settle = Instant::now();
    loop {
        let report = monitor().await?;
        show::streaming(&report, pipeline, streaming_since.elapsed(), None);
        let (slot, _) = show::pipeline_figures(&report, pipeline);
        if slot.and_then(|s| s.lag_bytes) == Some(0) || settle.elapsed() > Duration::from_secs(15) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (states, differences) = compare_tables(&admin, &target, &tables).await?;
    say!("comparison, source vs target, by content:");
    show::comparison(&states, &differences);
    drop(target);

    // 5. Teardown.
    let report = runtime.teardown(&state).await?;
    say!(
        "teardown: subscription dropped {}, slot dropped {}, publication dropped {}, clone deleted {}, share deleted {}",
        report.databases.subscription_dropped,
        report.databases.slot_dropped,
        report.databases.publication_dropped,
        report.databases.clone_deleted,
        report.share_deleted
    );
    drop(admin);
    drop(runtime);
    source.stop().await?;
    if options.keep {
        say!("kept {}", work.path.display());
    }
    drop(work);
    say!("demo finished in {}", show::millis(wall.elapsed()));
    Ok(differences.is_empty())
}
