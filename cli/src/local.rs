//! `clonesync local up|status|down` against a server the user runs, and
//! `clonesync preflight`.
//!
//! `up` runs the setup state machine like the demo and leaves the clone
//! running and subscribed; what `status` and `down` need is kept in
//! `pipeline.json` in the work directory — identifiers only: the password
//! is given again (in the URL or `PGPASSWORD`) when it is needed.

use crate::args::{PipelineDir, SourceOptions, SwitchoverArgs, UpOptions, VerifyArgs};
use crate::show;
use clonesync::error::{Error, Result};
use clonesync::monitor;
use clonesync::pg::{self, conninfo, ConnectionUrl, Secret, SessionSettings};
use clonesync::pipeline::Waits;
use clonesync::pipeline::{names, PipelineSpec};
use clonesync::pipeline::{Expected, Phase, PipelineRecord};
use clonesync::steps::sequences::Headroom;
use clonesync::workflow::{lifecycle, schema, State};
use clonesync_local::runtime::LocalRuntime;
use clonesync_local::LocalCloud;
use clonesync_local::{LocalControlPlane, PgBinaries, RunAs};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const RECORD: &str = "pipeline.json";

/// What `status` and `down` need (no credential): where the source and
/// the clone are, and the pipeline's registry record — the same
/// [`PipelineRecord`] the state machines keep in DynamoDB, its phase
/// (setting up, streaming, paused, switched over) included.
#[derive(Debug, Serialize, Deserialize)]
#[serde(try_from = "StoredPipeline")]
struct LocalPipeline {
    source_host: String,
    source_port: u16,
    source_database: String,
    source_user: String,
    /// The source URL without its password (its sslmode and the rest).
    source_url: Option<String>,
    clone_dir: PathBuf,
    clone_port: Option<u16>,
    record: PipelineRecord,
}

impl LocalPipeline {
    /// The setup state the record stands for (`State::of_record`, the one
    /// conversion).
    fn state(&self) -> State {
        State::of_record(&self.record)
    }
}

/// `pipeline.json` as read: the record, or, in a work directory written
/// before the record was the registry's, the setup state with its
/// `paused` and `switched_over` flags (read once, written back as a
/// record).
#[derive(Deserialize)]
struct StoredPipeline {
    source_host: String,
    source_port: u16,
    source_database: String,
    source_user: String,
    #[serde(default)]
    source_url: Option<String>,
    clone_dir: PathBuf,
    clone_port: Option<u16>,
    #[serde(default)]
    record: Option<PipelineRecord>,
    #[serde(default)]
    state: Option<Box<State>>,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    switched_over: bool,
}

impl TryFrom<StoredPipeline> for LocalPipeline {
    type Error = String;

    fn try_from(stored: StoredPipeline) -> std::result::Result<Self, String> {
        let record = match (stored.record, stored.state) {
            (Some(record), _) => record,
            (None, Some(state)) => {
                let phase = if stored.switched_over {
                    Phase::SwitchedOver
                } else if stored.paused {
                    Phase::Paused
                } else if state.clone_info.is_some() {
                    Phase::Streaming
                } else {
                    Phase::SettingUp
                };
                state.record(phase, 0)
            }
            (None, None) => return Err("it holds neither a record nor a setup state".into()),
        };
        Ok(LocalPipeline {
            source_host: stored.source_host,
            source_port: stored.source_port,
            source_database: stored.source_database,
            source_user: stored.source_user,
            source_url: stored.source_url,
            clone_dir: stored.clone_dir,
            clone_port: stored.clone_port,
            record,
        })
    }
}

/// Seconds since the Unix epoch (the record's `registered_at`).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

/// A clone is a base backup, which needs the binaries of the source's own
/// major: those are chosen when the source answers (`PG_BIN` still wins);
/// when it does not, the default ones, and preflight names any mismatch.
async fn binaries_for(source: &ConnectionUrl) -> Result<PgBinaries> {
    let major = match pg::connect(&source.endpoint, &session_of(source)).await {
        Ok(client) => pg::server::facts(&client)
            .await
            .ok()
            .map(|facts| facts.version_num / 10000),
        Err(_) => None,
    };
    match major.and_then(|m| u32::try_from(m).ok()) {
        Some(major) => PgBinaries::for_major(major),
        None => PgBinaries::locate(),
    }
}

async fn plane(
    source: &ConnectionUrl,
    clone_dir: &Path,
    clone_port: Option<u16>,
) -> Result<LocalControlPlane> {
    let mut plane = LocalControlPlane::new(
        source.endpoint.clone(),
        clone_dir,
        binaries_for(source).await?,
        RunAs::detect()?,
    )
    .with_session(session_of(source));
    plane.clone_port = clone_port;
    Ok(plane)
}

/// The longest Unix socket path PostgreSQL can bind (`sun_path`, less
/// its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Every argument and path of `local up`, checked before anything is
/// created or a server is touched.
fn check_paths(options: &UpOptions, clone_dir: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for (what, dir) in [
        ("--work-dir", &options.work_dir),
        ("--clone-dir", &clone_dir.to_path_buf()),
    ] {
        if !dir.is_absolute() {
            problems.push(format!("{what} {} must be an absolute path", dir.display()));
        }
        if dir.exists() && !dir.is_dir() {
            problems.push(format!(
                "{what} {} exists and is not a directory",
                dir.display()
            ));
        }
    }
    let clone_id = clonesync::pipeline::names::clone_id(&options.source.pipeline);
    let socket = clone_dir.join(&clone_id).join(".s.PGSQL.65535");
    let socket_text = socket.to_string_lossy();
    if socket_text.len() > MAX_SOCKET_PATH {
        problems.push(format!(
            "the clone's socket path would be {} bytes, over PostgreSQL's {MAX_SOCKET_PATH}: give a shorter --clone-dir",
            socket_text.len()
        ));
    }
    if socket_text.contains([',', '"', '\'', '\\']) {
        problems.push(
            "--clone-dir must not hold a comma, quote or backslash (it becomes unix_socket_directories)".into(),
        );
    }
    // A directory clonesync did not create is never handed to the server
    // account; an existing one must already be that account's.
    if let (true, Some(run_as)) = (clone_dir.exists(), RunAs::detect()?) {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(clone_dir)
            .map_err(|e| Error::local_file("read", clone_dir, e))?
            .uid();
        if owner != run_as.uid {
            problems.push(format!(
                "--clone-dir {} exists and belongs to another account; give a directory clonesync may create (or one the server account owns)",
                clone_dir.display()
            ));
        }
    }
    match recorded_pipeline(&options.work_dir)?.map(|p| p.id.to_string()) {
        Some(other) if other != options.source.pipeline => problems.push(format!(
            "{} holds pipeline {other:?}: a work directory holds one pipeline (give another --work-dir, or `local down` that one first)",
            options.work_dir.display()
        )),
        _ => {}
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidInput { problems })
    }
}

/// The pipeline recorded in `work_dir`, if any.
fn recorded_pipeline(work_dir: &Path) -> Result<Option<PipelineSpec>> {
    let path = work_dir.join(RECORD);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let record: LocalPipeline = serde_json::from_str(&text)
                .map_err(|e| Error::local_record(path.display().to_string(), e))?;
            Ok(Some(record.record.pipeline))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::local_file("read", path, e)),
    }
}

/// Create `dir` (and its parents) unless it exists; whether it was made.
fn create_dir(dir: &Path) -> Result<bool> {
    if dir.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::local_file("create", dir, e))?;
    Ok(true)
}

/// Holds the work directory's lock while alive: one clonesync command at
/// a time works on a pipeline.
struct WorkLock(#[allow(dead_code)] std::fs::File);

fn lock(work_dir: &Path) -> Result<WorkLock> {
    let path = work_dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::local_file("open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(WorkLock(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::LocalBusy {
            what: format!(
                "another clonesync command is working in {}",
                work_dir.display()
            ),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::local_file("lock", &path, e)),
    }
}

fn write_record(work_dir: &Path, record: &LocalPipeline) -> Result<()> {
    let path = work_dir.join(RECORD);
    let tmp = work_dir.join(format!("{RECORD}.tmp"));
    let text = serde_json::to_string_pretty(record)
        .map_err(|e| Error::local_record(path.display().to_string(), e))?;
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| Error::local_file("write", &path, e))
}

/// Show how a setup execution ended; when it streams, keep its state (and
/// the clone's port) in the record. Whether it streams.
fn record_outcome(
    outcome: &clonesync_local::runtime::RunOutcome,
    record: &mut LocalPipeline,
    work_dir: &Path,
) -> Result<bool> {
    show::outcome(outcome);
    if !outcome.succeeded() {
        return Ok(false);
    }
    let state = outcome.state()?;
    record.clone_port = state.clone_info().ok().map(|c| c.port);
    // Streaming: a re-seed makes a new copy, paused and switched over no
    // more.
    record.record = state.record(Phase::Streaming, now());
    write_record(work_dir, record)?;
    Ok(true)
}

/// A state machine execution's name: unique per second and pipeline, as
/// it must be (a Standard execution's name stays taken for 90 days,
/// AWS-BEHAVIOURS row 21; the pipeline's lock keeps two runs of one
/// pipeline from starting in one second).
fn execution_name(prefix: &str, pipeline: &str) -> String {
    execution_name_at(prefix, pipeline, SystemTime::now())
}

fn execution_name_at(prefix: &str, pipeline: &str, at: SystemTime) -> String {
    format!(
        "{prefix}{}-{}",
        pipeline.replace('_', "-"),
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    )
}

pub async fn up(options: UpOptions) -> Result<bool> {
    let source = login(&options.source.source_url)?;
    let clone_dir = options
        .clone_dir
        .clone()
        .unwrap_or_else(|| options.work_dir.join("clones"));
    check_paths(&options, &clone_dir)?;
    binaries_for(&source).await?;
    create_dir(&options.work_dir)?;
    let _lock = lock(&options.work_dir)?;
    // The clone's server runs as the server account, which owns its files;
    // only a directory made here is handed to it.
    if create_dir(&clone_dir)? {
        if let Some(run_as) = RunAs::detect()? {
            run_as.own(&clone_dir)?;
        }
    }
    if !clonesync_local::moto::moto_server().is_file() {
        say!(
            "installing {} (once) ...",
            clonesync_local::moto::MOTO_REQUIREMENT
        );
    }
    clonesync_local::moto::ensure_installed()?;
    let plane = plane(&source, &clone_dir, options.clone_port).await?;
    let runtime = LocalRuntime::start(plane, &options.work_dir.join("cloud")).await?;
    let scope =
        serde_json::to_value(&options.source.scope).map_err(|e| Error::local_record("scope", e))?;
    let mut input = match &options.databases {
        Some(databases) => clonesync_local::runtime::request_over(
            &options.source.pipeline,
            scope,
            databases,
            options.apply_groups,
            Waits::default(),
        ),
        None => {
            let mut input = runtime.request(
                &options.source.pipeline,
                scope,
                &source.endpoint.dbname,
                Waits::default(),
            );
            if options.apply_groups != 1 {
                input["pipeline"]["apply_groups"] = serde_json::json!(options.apply_groups);
            }
            input
        }
    };
    // The same pipeline set up again in its work directory keeps its
    // setup mark, an empty one too (recorded before marks existed: its
    // publication carries the id alone): what its earlier run made is its
    // own. A new one is drawn here, not by the run, so the record below
    // holds the mark the run puts on what it makes even if it is killed.
    let setup_mark = match recorded_pipeline(&options.work_dir)?
        .filter(|p| p.id.as_str() == options.source.pipeline)
    {
        Some(recorded) => recorded.setup_mark,
        None => names::new_setup_mark()?,
    };
    input["pipeline"]["setup_mark"] = serde_json::json!(setup_mark);
    // Recorded before the run, so a run that dies anywhere is found again
    // by `status` and removed by `down`; its setup mark with it, so `down`
    // removes what it made and nothing another setup of the id made.
    let mut record = LocalPipeline {
        source_host: source.endpoint.host.clone(),
        source_port: source.endpoint.port,
        source_database: source.endpoint.dbname.clone(),
        source_user: source.endpoint.user.clone(),
        source_url: Some(source.without_password()),
        clone_dir,
        clone_port: options.clone_port,
        record: clonesync::workflow::state::validate(input.clone(), clonesync_local::moto::REGION)?
            .record(Phase::SettingUp, now()),
    };
    write_record(&options.work_dir, &record)?;
    let name = execution_name("", &options.source.pipeline);
    say!("setup: execution {name}");
    // An interruption now would leave a slot on the source half-way
    // through the run: let the run finish (its own cleanup runs on failure).
    crate::interrupt::on_ctrl_c(
        "letting the setup finish so nothing is left half-made; `clonesync local down` removes it",
    );
    let outcome = runtime
        .run(&name, &input, &mut show::progress(SystemTime::now()))
        .await?;
    if !record_outcome(&outcome, &mut record, &options.work_dir)? {
        return Ok(false);
    }
    let state = record.state();
    let info = state.clone_info()?;
    say!(
        "streaming: clone {} on {}:{}, subscription {:?}; `clonesync local status --work-dir {}` shows the lag",
        info.clone_id,
        info.host,
        info.port,
        state.pipeline.subscription.as_str(),
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

/// Every object of clonesync's on the source, found by its mark whether
/// or not a record names it: slots by their `clonesync_` name, with the
/// WAL they retain, and publications by their comment. One line each.
async fn clonesync_objects(source: &ConnectionUrl) -> Result<Vec<String>> {
    let client = pg::connect(&source.endpoint, &session_of(source)).await?;
    let mut lines = Vec::new();
    for slot in pg::lag::slot_lags(&client, None).await? {
        if slot.slot.starts_with(names::OBJECT_PREFIX) {
            lines.push(format!(
                "slot {} ({}, database {}, retains {} bytes of WAL)",
                slot.slot,
                if slot.active { "active" } else { "inactive" },
                slot.database.as_deref().unwrap_or("?"),
                slot.retained_bytes().unwrap_or(0)
            ));
        }
    }
    for (name, mark) in pg::publication::marked_publications(&client, names::MARK_PREFIX).await? {
        lines.push(format!("publication {name} ({mark})"));
    }
    Ok(lines)
}

/// Say which of clonesync's objects on the source are this pipeline's:
/// its triples' slots and publications unless the publication carries
/// another setup's mark (then both are that setup's, and `down` leaves
/// them). Whether every triple is this pipeline's.
async fn show_ownership(
    claims: &[(
        clonesync::pipeline::Triple,
        clonesync::pipeline::Claim,
        Option<String>,
    )],
    url: &ConnectionUrl,
) -> Result<bool> {
    for (triple, _, mark) in claims.iter().filter(|(_, claim, _)| claim.is_theirs()) {
        say!(
            "  NOT THIS SETUP'S: publication {} in database {} is marked {:?}; it and slot {} are another setup's, and `down` leaves them",
            triple.publication,
            triple.database,
            mark.as_deref().unwrap_or_default(),
            triple.slot
        );
    }
    let ours = |line: &str| {
        claims
            .iter()
            .filter(|(_, claim, _)| !claim.is_theirs())
            .any(|(t, _, _)| {
                line.starts_with(&format!("slot {} ", t.slot))
                    || line.starts_with(&format!("publication {} ", t.publication))
            })
    };
    let (own, others): (Vec<String>, Vec<String>) = clonesync_objects(url)
        .await?
        .into_iter()
        .partition(|line| ours(line));
    show_objects("this pipeline's objects on the source", &own);
    if !others.is_empty() {
        show_objects("other clonesync objects on the source", &others);
    }
    Ok(claims.iter().all(|(_, claim, _)| !claim.is_theirs()))
}

fn show_objects(heading: &str, objects: &[String]) {
    if objects.is_empty() {
        say!("{heading}: none");
    } else {
        say!("{heading}:");
        for line in objects {
            say!("  {line}");
        }
    }
}

/// The record of `dir`, or, with `--pipeline` and `--source-url`, the
/// pipeline that would have been recorded (a run killed before it wrote
/// one, or a record removed by hand); `None` when neither. Named so, the
/// operator claims the id: the setup mark is the one the source's
/// publication of that id carries.
async fn record_or_named(dir: &PipelineDir) -> Result<Option<(LocalPipeline, ConnectionUrl)>> {
    if dir.work_dir.join(RECORD).exists() {
        return read_record(dir).map(Some);
    }
    let (Some(pipeline), Some(url)) = (&dir.pipeline, &dir.source_url) else {
        return Ok(None);
    };
    let source = login(url)?;
    let mut input = clonesync_local::runtime::request(
        pipeline,
        serde_json::json!({"kind": "all_tables"}),
        &source.endpoint.dbname,
        Waits::default(),
    );
    let client = pg::connect(&source.endpoint, &session_of(&source)).await?;
    let found = pg::publication::marked_publications(&client, names::MARK_PREFIX).await?;
    if let Some((_, mark)) = found.iter().find_map(|(_, comment)| {
        names::parse_ownership_mark(comment).filter(|(id, _)| id == pipeline)
    }) {
        input["pipeline"]["setup_mark"] = serde_json::json!(mark);
    }
    let record = LocalPipeline {
        source_host: source.endpoint.host.clone(),
        source_port: source.endpoint.port,
        source_database: source.endpoint.dbname.clone(),
        source_user: source.endpoint.user.clone(),
        source_url: Some(source.without_password()),
        clone_dir: dir.work_dir.join("clones"),
        clone_port: None,
        record: clonesync::workflow::state::validate(input, clonesync_local::moto::REGION)?
            .record(Phase::SettingUp, now()),
    };
    Ok(Some((record, source)))
}

fn no_record(dir: &PipelineDir) -> Error {
    Error::local_file(
        "read the record (no pipeline set up there with `clonesync local up`? \
         give --source-url to list clonesync's objects on the source, and --pipeline \
         with `down` to remove them)",
        dir.work_dir.join(RECORD),
        std::io::Error::from(std::io::ErrorKind::NotFound),
    )
}

/// The lag monitor's reading of this pipeline (the figures the
/// lag-monitor function publishes), read with the same code, and every
/// object of clonesync's on the source.
pub async fn status(dir: PipelineDir) -> Result<bool> {
    let Some((record, url)) = record_or_named(&dir).await? else {
        let Some(given) = &dir.source_url else {
            return Err(no_record(&dir));
        };
        say!("no pipeline recorded in {}", dir.work_dir.display());
        show_objects(
            "clonesync objects on the source",
            &clonesync_objects(&login(given)?).await?,
        );
        return Ok(false);
    };
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    let source = url.endpoint.clone();
    let state = &record.state();
    let claims = clonesync::workflow::claims(&plane, state).await?;
    let Ok(info) = state.clone_info() else {
        say!(
            "pipeline {}: source {}:{}/{}; its setup did not finish (`clonesync local down` removes what it made)",
            state.pipeline.id,
            source.host,
            source.port,
            source.dbname
        );
        show_ownership(&claims, &url).await?;
        return Ok(false);
    };
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
    let registered = registered(&record, info);
    // A refresh that fails still leaves the pending changes to tell.
    let refreshed = match schema::refresh_pipeline(&plane, &registered).await {
        Ok(refreshed) => Ok(refreshed),
        Err(e) => Err((
            schema::schema_changes_pipeline(&plane, &registered).await,
            e,
        )),
    };
    let cloud = LocalCloud::offline(plane, &dir.work_dir.join("cloud"));
    if record.record.phase == Phase::SwitchedOver {
        say!("  SWITCHED OVER (clonesync local switchover): the clone is a standalone database; do not resume");
    } else if record.record.phase == Phase::Paused {
        say!("  PAUSED (clonesync local pause): the subscription is disabled on purpose; the slot keeps WAL until `local resume`");
    }
    let report = monitor::check(&cloud, &[registered]).await;
    show::report(&report);
    // PostgreSQL counts apply errors but keeps no text of them; the
    // clone's own log has it.
    let log = record.clone_dir.join(&info.clone_id).join("server.log");
    if let Some(line) = last_apply_error(&log) {
        say!("  last apply error (clone log): {line}");
    }
    let triples = state.triples();
    let all_ours = show_ownership(&claims, &url).await?;
    let refreshed = match refreshed {
        Ok(refreshed) => refreshed,
        Err((schema_changes, e)) => {
            say!("  the refresh failed ({}): {e}", e.name());
            schema::PipelineRefresh {
                pipeline: state.pipeline.id.to_string(),
                schema_changes: schema_changes?,
                error: Some((e.name().to_string(), e.to_string())),
                ..schema::PipelineRefresh::default()
            }
        }
    };
    show::refresh(&refreshed);
    // Healthy only when every triple is: each slot active, each
    // subscription's worker applying.
    let id = state.pipeline.id.as_str();
    let owned: Vec<_> = report
        .slots()
        .filter(|(_, s)| s.pipeline.as_deref() == Some(id))
        .collect();
    let mine: Vec<&monitor::TargetReading> =
        report.targets.iter().filter(|t| t.pipeline == id).collect();
    Ok(all_ours
        && report.errors.is_empty()
        && owned.len() == triples.len()
        && owned.iter().all(|(_, s)| s.active)
        && monitor::TargetReading::combined(&mine).is_some_and(|t| {
            t.apply_worker && t.tables_not_published.as_ref().is_none_or(Vec::is_empty)
        })
        && refreshed.error.is_none()
        && refreshed.pending() == 0)
}

/// The registry record a local pipeline stands for, with its clone.
fn registered(record: &LocalPipeline, info: &clonesync::pipeline::CloneInfo) -> PipelineRecord {
    PipelineRecord {
        clone_info: Some(info.clone()),
        ..record.record.clone()
    }
}

/// `local refresh`: the tables new to each publication into its
/// subscription (copied), and the schema changes the copy could not
/// apply. True when nothing is pending or missing.
pub async fn refresh(dir: PipelineDir) -> Result<bool> {
    let (record, url) = read_record(&dir)?;
    let _lock = lock(&dir.work_dir)?;
    let info = record.state().clone_info()?.clone();
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    let report = schema::refresh_pipeline(&plane, &registered(&record, &info)).await?;
    show::refresh(&report);
    Ok(report.pending() == 0
        && report
            .triples
            .iter()
            .all(|(_, t)| t.missing_on_target.is_empty()))
}

/// `local drift` (or `clonesync drift`): every table in scope compared by
/// shape, source against target. True when nothing differs.
pub async fn drift(dir: PipelineDir) -> Result<bool> {
    let (record, url) = read_record(&dir)?;
    let info = record.state().clone_info()?.clone();
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    let report = schema::drift_pipeline(&plane, &registered(&record, &info)).await?;
    show::drift(&report);
    Ok(report.differences() == 0)
}

/// `clonesync verify`: every table in scope (or those asked) compared by
/// content while writes go on. True only when every table is equal.
pub async fn verify(args: VerifyArgs) -> Result<bool> {
    let (record, url) = read_record(&args.dir)?;
    let info = record.state().clone_info()?.clone();
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    let request = clonesync::workflow::verify::VerifyRequest {
        pipeline_id: record.state().pipeline.id.clone(),
        tables: args.tables,
        options: args.options,
    };
    let started = std::time::Instant::now();
    let verdicts =
        clonesync::workflow::verify::verify_pipeline(&plane, &registered(&record, &info), &request)
            .await?;
    show::verdicts(&verdicts, started.elapsed());
    let unlogged =
        clonesync::workflow::verify::not_replicated_pipeline(&plane, &registered(&record, &info))
            .await?;
    if !unlogged.is_empty() {
        say!(
            "  NOT VERIFIED, not replicated (unlogged; PostgreSQL does not replicate them): {}",
            unlogged.join(", ")
        );
    }
    Ok(verdicts
        .iter()
        .all(|v| v.verdict == clonesync::steps::verify_table::Verdict::Equal))
}

/// `clonesync sequences`: the target's sequences set ahead of the source's.
/// True when every sequence in scope exists on the target.
pub async fn sequences(dir: PipelineDir, headroom: Headroom) -> Result<bool> {
    let (record, url) = read_record(&dir)?;
    let _lock = lock(&dir.work_dir)?;
    let info = record.state().clone_info()?.clone();
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    let report = clonesync::workflow::switchover::sequences_pipeline(
        &plane,
        &registered(&record, &info),
        headroom,
    )
    .await?;
    show::sequences(&report);
    Ok(report.missing_on_target().is_empty())
}

/// `local switchover`: `statemachine/switchover.asl.json` through moto.
pub async fn switchover(args: SwitchoverArgs) -> Result<bool> {
    let (mut record, url) = read_record(&args.dir)?;
    let _lock = lock(&args.dir.work_dir)?;
    if record.record.phase == Phase::SwitchedOver {
        say!(
            "pipeline {} is switched over already: the clone is a standalone database",
            record.state().pipeline.id
        );
        return Ok(true);
    }
    clonesync_local::moto::ensure_installed()?;
    let info = record.state().clone_info()?.clone();
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    let runtime = LocalRuntime::start(plane, &args.dir.work_dir.join("cloud")).await?;
    runtime
        .registry()
        // The runtime's moto starts empty: the local record is written
        // into it.
        .put_pipeline(&registered(&record, &info), &Expected::Absent)
        .await?;
    let id = record.state().pipeline.id.to_string();
    let input = serde_json::json!({
        "pipeline_id": id,
        "quiet_seconds": args.quiet_seconds,
        "source_stopped": args.source_stopped,
        "drop_source_objects": args.drop_source_objects,
        "headroom": args.headroom,
    });
    let name = execution_name("switchover-", &id);
    say!("switchover: execution {name} (switchover.asl.json)");
    crate::interrupt::on_ctrl_c("letting the switchover finish its step");
    let outcome = runtime
        .run_switchover(&name, &input, &mut show::progress(SystemTime::now()))
        .await?;
    show::outcome(&outcome);
    if let Some(summary) = outcome.output.as_ref().and_then(|o| o.get("summary")) {
        say!("  verification: {summary}");
    }
    if !outcome.succeeded() {
        say!("  nothing was switched: the subscription still applies (the target's sequences may have moved forward, which is harmless)");
        return Ok(false);
    }
    record.record.phase = Phase::SwitchedOver;
    write_record(&args.dir.work_dir, &record)?;
    say!(
        "switched over: the clone on {}:{} is a standalone database{}",
        info.host,
        info.port,
        if args.drop_source_objects {
            "; the source's slot and publication are dropped"
        } else {
            "; the source's slot is kept (it retains WAL: drop it with `clonesync local down` once the clone is no longer needed, or run the switchover with --drop-source-objects)"
        }
    );
    Ok(true)
}

/// The last error an apply worker wrote to the clone's log, if any.
fn last_apply_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().rev().find_map(|(i, line)| {
        // The error, then its DETAIL and a CONTEXT naming the replication
        // origin, then the worker's exit.
        let error = line.contains("ERROR:");
        let apply = lines.iter().skip(i).take(4).any(|next| {
            next.contains("logical replication") || next.contains("replication origin")
        });
        (error && apply).then(|| line.trim().to_string())
    })
}

/// Remove everything the pipeline is named for, whether its setup
/// finished or not; then what of clonesync's is still on the source.
pub async fn down(dir: PipelineDir) -> Result<bool> {
    let Some((record, url)) = record_or_named(&dir).await? else {
        return Err(no_record(&dir));
    };
    create_dir(&dir.work_dir)?;
    let _lock = lock(&dir.work_dir)?;
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    // A run killed before preflight planned its triples left a record
    // without them: name them again from the request, so every slot goes.
    let mut state = record.state();
    if record.record.triples.is_empty()
        && (state.source.several_databases() || state.apply_groups > 1)
    {
        match clonesync::workflow::named_triples(&plane, &state).await {
            Ok(triples) => state.recorded_triples = triples,
            Err(e) => {
                tracing::warn!(error = %e, kind = e.name(), "could not name the pipeline's triples again")
            }
        }
    }
    let runtime = LocalRuntime::start(plane, &dir.work_dir.join("cloud")).await?;
    say!("down: running statemachine/teardown.asl.json (delete_clone, delete_share) through moto");
    let report = runtime
        .teardown_by_state_machine(&state, &mut show::progress(SystemTime::now()))
        .await?;
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
    show_objects(
        "clonesync objects left on the source",
        &clonesync_objects(&url).await?,
    );
    Ok(true)
}

/// `local reseed`: the setup state machine with `"reseed": true` — the old
/// subscription, slot, publication and clone go, then the same pipeline
/// is set up again; the record follows.
pub async fn reseed(dir: PipelineDir) -> Result<bool> {
    let (mut record, url) = read_record(&dir)?;
    let _lock = lock(&dir.work_dir)?;
    clonesync_local::moto::ensure_installed()?;
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    let runtime = LocalRuntime::start(plane, &dir.work_dir.join("cloud")).await?;
    let state = record.state();
    let input = clonesync_local::runtime::request_again(&state, Waits::default());
    let name = execution_name("reseed-", state.pipeline.id.as_str());
    say!("reseed: execution {name} (setup.asl.json with reseed: true)");
    crate::interrupt::on_ctrl_c("letting the re-seed finish so nothing is left half-made");
    let outcome = runtime
        .reseed(
            &name,
            &state,
            &input,
            &mut show::progress(SystemTime::now()),
        )
        .await?;
    if !record_outcome(&outcome, &mut record, &dir.work_dir)? {
        return Ok(false);
    }
    say!("streaming again from a new clone");
    Ok(true)
}

/// `local pause` (`pause`) or `local resume`: disable or enable the
/// subscription on the clone, keeping the slot, and note it in the record
/// so `status` reports the pipeline as paused, not broken.
pub async fn pause(dir: PipelineDir, pause: bool) -> Result<bool> {
    let (mut record, url) = read_record(&dir)?;
    let _lock = lock(&dir.work_dir)?;
    let state = &record.state();
    let info = state.clone_info()?.clone();
    let plane = plane(&url, &record.clone_dir, record.clone_port).await?;
    let inventory = registered(&record, &info);
    let pausing = if pause {
        lifecycle::Pausing::Pause
    } else {
        lifecycle::Pausing::Resume
    };
    lifecycle::set_subscription(&plane, &inventory, pausing).await?;
    record.record.phase = pausing.phase_after(record.record.phase);
    write_record(&dir.work_dir, &record)?;
    say!(
        "pipeline {}: subscription {} {}; the slot {} stays",
        record.state().pipeline.id,
        record.state().pipeline.subscription,
        if pause {
            "disabled (paused)"
        } else {
            "enabled (resumed)"
        },
        record.state().pipeline.slot
    );
    Ok(true)
}

pub async fn preflight(options: SourceOptions) -> Result<bool> {
    let source = login(&options.source_url)?;
    let scope =
        serde_json::to_value(&options.scope).map_err(|e| Error::local_record("scope", e))?;
    // The setup state machine's own request and preflight: every triple
    // the request has, checked the way setup checks them.
    let input = clonesync_local::runtime::request(
        &options.pipeline,
        scope,
        &source.endpoint.dbname,
        Waits::default(),
    );
    let state = clonesync::workflow::state::validate(input, clonesync_local::moto::REGION)?;
    let plane = plane(&source, &std::env::temp_dir(), None).await?;
    let objects = clonesync_objects(&source).await?;
    let source = source.endpoint;
    say!(
        "preflight of {}:{}/{} for pipeline {}",
        source.host,
        source.port,
        source.dbname,
        state.pipeline.id
    );
    let outcome = match clonesync::workflow::preflight(&plane, &state).await {
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
    };
    // A slot left by a run that died retains WAL: say so whatever else
    // preflight found.
    show_objects("clonesync objects already on the source", &objects);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Step Functions' execution names: 1-80 characters, and only
    /// `0-9A-Za-z-_` where CloudWatch Logs must accept them; a new name
    /// every second for one pipeline, and never another pipeline's.
    #[test]
    fn execution_names_are_new_each_second_valid_and_name_their_pipeline() {
        let longest = (1..=80)
            .map(|n| format!("p{}", "x".repeat(n - 1)))
            .rfind(|id| names::PipelineId::new(id.clone()).is_ok())
            .unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_688_000);
        for prefix in ["", "switchover-", "reseed-"] {
            for pipeline in ["orders_dev", "a", longest.as_str()] {
                let name = execution_name_at(prefix, pipeline, at);
                assert!((1..=80).contains(&name.len()), "{name}");
                assert!(
                    name.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{name}"
                );
                assert!(name.starts_with(prefix), "{name}");
                let next = execution_name_at(prefix, pipeline, at + Duration::from_secs(1));
                assert_ne!(name, next);
                // 90 days later the name is a new one too.
                let later =
                    execution_name_at(prefix, pipeline, at + Duration::from_secs(90 * 86_400));
                assert_ne!(name, later);
            }
        }
        // Two pipelines never share a name in one second, even where one
        // id is another's prefix.
        assert_ne!(
            execution_name_at("", "orders", at),
            execution_name_at("", "orders_1", at)
        );
        assert_ne!(
            execution_name("", "orders"),
            execution_name_at("", "orders", at)
        );
    }

    fn legacy(paused: bool, switched_over: bool, streaming: bool) -> serde_json::Value {
        let input = clonesync_local::runtime::request(
            "legacy",
            serde_json::json!({"kind": "all_tables"}),
            "appdb",
            Waits::default(),
        );
        let mut state =
            clonesync::workflow::state::validate(input, clonesync_local::moto::REGION).unwrap();
        if streaming {
            state.clone_info = Some(clonesync::pipeline::CloneInfo {
                clone_id: "clonesync-legacy".into(),
                host: "127.0.0.1".into(),
                port: 5999,
            });
        }
        serde_json::json!({
            "source_host": "127.0.0.1",
            "source_port": 5432,
            "source_database": "appdb",
            "source_user": "admin",
            "clone_dir": "/tmp/clones",
            "clone_port": null,
            "state": state,
            "paused": paused,
            "switched_over": switched_over,
        })
    }

    /// A work directory written when the record was the setup state and
    /// two flags reads as the registry's record, its phase from the flags,
    /// and is written back as a record.
    #[test]
    fn a_legacy_record_reads_as_the_registrys_record() {
        for (paused, switched_over, streaming, phase) in [
            (false, false, false, Phase::SettingUp),
            (false, false, true, Phase::Streaming),
            (true, false, true, Phase::Paused),
            (true, true, true, Phase::SwitchedOver),
        ] {
            let read: LocalPipeline =
                serde_json::from_value(legacy(paused, switched_over, streaming)).unwrap();
            assert_eq!(read.record.phase, phase);
            assert_eq!(read.record.pipeline.id, "legacy");
            assert_eq!(read.record.clone_info.is_some(), streaming);
            let written = serde_json::to_value(&read).unwrap();
            assert!(written.get("state").is_none() && written.get("paused").is_none());
            let again: LocalPipeline = serde_json::from_value(written).unwrap();
            assert_eq!(again.record, read.record);
        }
        let mut neither = legacy(false, false, false);
        neither.as_object_mut().unwrap().remove("state");
        let err = serde_json::from_value::<LocalPipeline>(neither).unwrap_err();
        assert!(err
            .to_string()
            .contains("neither a record nor a setup state"));
    }
}
