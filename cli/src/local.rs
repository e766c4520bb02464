//! `clonesync local up|status|down` against a server the user runs, and
//! `clonesync preflight`.
//!
//! `up` runs the setup state machine like the demo and leaves the clone
//! running and subscribed; what `status` and `down` need is kept in
//! `pipeline.json` in the work directory — identifiers only: the password
//! is given again (in the URL or `PGPASSWORD`) when it is needed.

use crate::args::{PipelineDir, SourceOptions, UpOptions};
use crate::show;
use clonesync::error::{Error, Result};
use clonesync::monitor;
use clonesync::pg::{self, conninfo, ConnectionUrl, Secret, SessionSettings};
use clonesync::pipeline::PipelineRecord;
use clonesync::pipeline::PipelineSpec;
use clonesync::pipeline::Waits;
use clonesync::steps::preflight;
use clonesync::workflow::State;
use clonesync_local::runtime::LocalRuntime;
use clonesync_local::LocalCloud;
use clonesync_local::{LocalControlPlane, PgBinaries, RunAs, LOCAL_CLONE_EXTRA_SENDERS};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const RECORD: &str = "pipeline.json";

/// What `status` and `down` need (no credential).
#[derive(Debug, Serialize, Deserialize)]
struct LocalPipeline {
    source_host: String,
    source_port: u16,
    source_database: String,
    source_user: String,
    /// The source URL without its password (its sslmode and the rest).
    #[serde(default)]
    source_url: Option<String>,
    clone_dir: PathBuf,
    clone_port: Option<u16>,
    state: State,
}

/// The source login: the URL's, with `PGPASSWORD` when it has none.
fn login(url: &str) -> Result<ConnectionUrl> {
    let mut url = ConnectionUrl::parse(url)?;
    if url.endpoint.password.is_none() {
        url.endpoint.password = std::env::var("PGPASSWORD").ok().map(Secret::new);
    }
    Ok(url)
}

/// Sessions to the source as its URL asks (TLS from `sslmode`).
fn session_of(url: &ConnectionUrl) -> SessionSettings {
    let defaults = SessionSettings::default();
    SessionSettings {
        tls: url.tls.clone(),
        application_name: url
            .application_name
            .clone()
            .unwrap_or(defaults.application_name.clone()),
        ..defaults
    }
}

fn plane(
    source: &ConnectionUrl,
    clone_dir: &Path,
    clone_port: Option<u16>,
) -> Result<LocalControlPlane> {
    let mut plane = LocalControlPlane::new(
        source.endpoint.clone(),
        clone_dir,
        PgBinaries::locate()?,
        RunAs::detect()?,
    )
    .with_session(session_of(source));
    plane.clone_port = clone_port;
    Ok(plane)
}

pub async fn up(options: UpOptions) -> Result<bool> {
    let source = login(&options.source.source_url)?;
    let clone_dir = options
        .clone_dir
        .clone()
        .unwrap_or_else(|| options.work_dir.join("clones"));
    for dir in [&options.work_dir, &clone_dir] {
        std::fs::create_dir_all(dir).map_err(|e| Error::local_file("create", dir, e))?;
    }
    // The clone's server runs as the server account, which owns its files.
    if let Some(run_as) = RunAs::detect()? {
        run_as.own(&clone_dir)?;
    }
    if !clonesync_local::moto::moto_server().is_file() {
        say!(
            "installing {} (once) ...",
            clonesync_local::moto::MOTO_REQUIREMENT
        );
    }
    clonesync_local::moto::ensure_installed()?;
    let plane = plane(&source, &clone_dir, options.clone_port)?;
    let runtime = LocalRuntime::start(plane, &options.work_dir.join("cloud")).await?;
    let scope =
        serde_json::to_value(&options.source.scope).map_err(|e| Error::local_record("scope", e))?;
    let input = runtime.request(
        &options.source.pipeline,
        scope,
        &source.endpoint.dbname,
        Waits::default(),
    );
    let name = format!(
        "{}-{}",
        options.source.pipeline.replace('_', "-"),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    say!("setup: execution {name}");
    // A Ctrl-C now would leave a slot on the source half-way through the
    // run: let the run finish (its own cleanup runs on failure).
    crate::interrupt::on_ctrl_c(
        "letting the setup finish so nothing is left half-made; `clonesync local down` removes it",
    );
    let outcome = runtime
        .run(&name, &input, &mut show::progress(SystemTime::now()))
        .await?;
    show::outcome(&outcome);
    if !outcome.succeeded() {
        return Ok(false);
    }
    let state = outcome.state()?;
    let record = LocalPipeline {
        source_host: source.endpoint.host.clone(),
        source_port: source.endpoint.port,
        source_database: source.endpoint.dbname.clone(),
        source_user: source.endpoint.user.clone(),
        source_url: Some(source.without_password()),
        clone_dir,
        clone_port: state.clone_info().ok().map(|c| c.port),
        state,
    };
    let path = options.work_dir.join(RECORD);
    let text = serde_json::to_string_pretty(&record)
        .map_err(|e| Error::local_record(path.display().to_string(), e))?;
    std::fs::write(&path, text).map_err(|e| Error::local_file("write", &path, e))?;
    let info = record.state.clone_info()?;
    say!(
        "streaming: clone {} on {}:{}, subscription {:?}; `clonesync local status --work-dir {}` shows the lag",
        info.clone_id,
        info.host,
        info.port,
        record.state.pipeline.subscription.as_str(),
        options.work_dir.display()
    );
    Ok(true)
}

fn read_record(dir: &PipelineDir) -> Result<(LocalPipeline, ConnectionUrl)> {
    let path = dir.work_dir.join(RECORD);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::local_file(
            "read the record (no pipeline set up there with `clonesync local up`?)",
            &path,
            e,
        )
    })?;
    let record: LocalPipeline = serde_json::from_str(&text)
        .map_err(|e| Error::local_record(path.display().to_string(), e))?;
    // Records written before the URL was kept: rebuild it (no TLS then).
    let recorded = record.source_url.clone().unwrap_or_else(|| {
        format!(
            "postgresql://{}@{}:{}/{}",
            conninfo::encode(&record.source_user),
            conninfo::encode(&record.source_host),
            record.source_port,
            conninfo::encode(&record.source_database)
        )
    });
    let mut source = login(&recorded)?;
    if let Some(url) = &dir.source_url {
        let given = login(url)?;
        let (g, s) = (&given.endpoint, &source.endpoint);
        if (g.host.as_str(), g.port) != (s.host.as_str(), s.port) {
            return Err(Error::invalid(format!(
                "--source-url names {}:{}, the pipeline's source is {}:{}",
                g.host, g.port, s.host, s.port
            )));
        }
        source = given;
    }
    Ok((record, source))
}

/// The lag monitor's reading of this pipeline (the figures the
/// lag-monitor function publishes), read with the same code.
pub async fn status(dir: PipelineDir) -> Result<bool> {
    let (record, source) = read_record(&dir)?;
    let plane = plane(&source, &record.clone_dir, record.clone_port)?;
    let source = source.endpoint;
    let state = &record.state;
    let info = state.clone_info()?;
    say!(
        "pipeline {}: source {}:{}/{}, clone {} on {}:{}",
        state.pipeline.id,
        source.host,
        source.port,
        source.dbname,
        info.clone_id,
        info.host,
        info.port
    );
    let cloud = LocalCloud::offline(plane, &dir.work_dir.join("cloud"));
    let registered = PipelineRecord {
        pipeline: state.pipeline.clone(),
        source: state.source.clone(),
        clone: state.clone.clone(),
        clone_info: info.clone(),
        registered_at: 0,
    };
    let report = monitor::check(&cloud, &[registered]).await;
    show::report(&report);
    let (slot, target) = show::pipeline_figures(&report, state.pipeline.id.as_str());
    Ok(report.errors.is_empty()
        && slot.is_some_and(|s| s.active)
        && target.is_some_and(|t| t.apply_worker))
}

pub async fn down(dir: PipelineDir) -> Result<bool> {
    let (record, source) = read_record(&dir)?;
    let plane = plane(&source, &record.clone_dir, record.clone_port)?;
    let runtime = LocalRuntime::start(plane, &dir.work_dir.join("cloud")).await?;
    let report = runtime.teardown(&record.state).await?;
    say!(
        "down: subscription dropped {}, slot dropped {}, publication dropped {}, clone deleted {}, share deleted {}",
        report.databases.subscription_dropped,
        report.databases.slot_dropped,
        report.databases.publication_dropped,
        report.databases.clone_deleted,
        report.share_deleted
    );
    drop(runtime);
    for leftover in [dir.work_dir.join(RECORD), dir.work_dir.join("cloud")] {
        let _ = std::fs::remove_file(&leftover).or_else(|_| std::fs::remove_dir_all(&leftover));
    }
    Ok(true)
}

pub async fn preflight(options: SourceOptions) -> Result<bool> {
    let source = login(&options.source_url)?;
    let spec = PipelineSpec::with_defaults(&options.pipeline, options.scope)?;
    let plane = plane(&source, &std::env::temp_dir(), None)?;
    let client = pg::connect(&source.endpoint, &session_of(&source)).await?;
    let source = source.endpoint;
    say!(
        "preflight of {}:{}/{} for pipeline {}",
        source.host,
        source.port,
        source.dbname,
        spec.id
    );
    match preflight::run(&plane, &client, None, &spec, LOCAL_CLONE_EXTRA_SENDERS).await {
        Ok(report) => {
            say!(
                "  ok: server version {}, {} tables in scope",
                report.source_version_num,
                report.tables_in_scope
            );
            for warning in &report.warnings {
                say!("  warning: {warning}");
            }
            Ok(true)
        }
        Err(Error::PreflightFailed { failures }) => {
            say!("  {} problem(s):", failures.len());
            for failure in failures {
                say!("  x {}: {}", failure.check, failure.detail);
                say!("      fix: {}", failure.hint);
            }
            Ok(false)
        }
        Err(other) => Err(other),
    }
}
