//! The local control plane: a "clone" is a physical copy of a local source
//! server, recovered to a known WAL position and promoted.
//!
//! The recipe, and why:
//! 1. `pg_basebackup` of the running source (WAL streamed alongside).
//! 2. Read `pg_current_wal_lsn()` on the source *after* the copy: `L`. It is
//!    after the slot's consistent point (the slot existed before the copy
//!    began) and every change the copy holds is before it.
//! 3. Recover the copy as a standby streaming from the source with
//!    `recovery_target_lsn = L`, `recovery_target_inclusive = false`,
//!    `recovery_target_action = promote`: it replays exactly the WAL records
//!    that start before `L`. Logical decoding from origin `L` sends exactly
//!    the transactions whose commit record starts at or after `L` (see
//!    `SnapBuildXactNeedsSkip` in PostgreSQL's snapbuild.c), so each
//!    transaction lands once. With `inclusive = true` a commit record that
//!    starts exactly at `L` would be replayed *and* sent.
//! 4. `L` plays the part of `aurora_volume_logical_start_lsn()`; it is kept
//!    in `clone.json` beside the clone's data directory.
//!
//! Idempotent: a finished clone (its `clone.json` written last) is reused
//! and started if stopped; a half-made one is discarded and made anew.

use crate::server::{conf_value, wait_until, write_private, LocalServer, PgBinaries, RunAs};
use clonesync::error::{Error, PreflightFailure, Result};
use clonesync::pg::{self, server, wal, Endpoint, Lsn, Secret, SessionSettings};
use clonesync::pipeline::CloneInfo;
use clonesync::ports::{ControlPlane, SourceLogin};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;
use tokio_postgres::Client;

/// What is kept about a finished clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCloneRecord {
    pub clone_id: String,
    pub port: u16,
    pub start_lsn: Lsn,
}

/// Replication slots and WAL senders the local clone needs on the source
/// besides the pipeline's own: `pg_basebackup -X stream` uses two senders
/// and a temporary slot.
pub const LOCAL_CLONE_EXTRA_SENDERS: i64 = 2;

/// One version of the source login's password.
#[derive(Debug, Clone)]
struct SecretVersion {
    id: String,
    password: Option<Secret>,
}

/// The versions Secrets Manager would hold: `AWSCURRENT`, and after a
/// rotation `AWSPREVIOUS`.
#[derive(Debug)]
struct SourceSecret {
    current: SecretVersion,
    previous: Option<SecretVersion>,
}

#[derive(Clone)]
pub struct LocalControlPlane {
    /// The source, as the clone's base backup and recovery reach it: a
    /// login with the REPLICATION attribute (a superuser locally). The clone
    /// is a copy, so the same login works on it. Its password is the
    /// secret's current version in `secret`.
    source: Endpoint,
    /// The source login's password as Secrets Manager would keep it:
    /// shared by every copy of this plane, so a rotation is seen by all.
    secret: Arc<Mutex<SourceSecret>>,
    bins: PgBinaries,
    run_as: Option<RunAs>,
    clones_dir: PathBuf,
    session: SessionSettings,
    /// How long to wait for the clone to reach its target and promote.
    pub promote_timeout: Duration,
    /// The clone's port; a free one when `None`.
    pub clone_port: Option<u16>,
    /// Settings a new clone starts with instead of the source's (its
    /// parameter group's, in the local cloud).
    clone_settings: Vec<(String, String)>,
}

impl LocalControlPlane {
    /// Clone the server at `source` (any reachable PostgreSQL server of the
    /// same major version as the local binaries; no access to its data
    /// directory is needed) into directories under `clones_dir`.
    pub fn new(
        source: Endpoint,
        clones_dir: &Path,
        bins: PgBinaries,
        run_as: Option<RunAs>,
    ) -> Self {
        let secret = Arc::new(Mutex::new(SourceSecret {
            current: SecretVersion {
                id: "1".into(),
                password: source.password.clone(),
            },
            previous: None,
        }));
        LocalControlPlane {
            source,
            secret,
            bins,
            run_as,
            clones_dir: clones_dir.to_path_buf(),
            session: SessionSettings::default(),
            promote_timeout: Duration::from_secs(120),
            clone_port: None,
            clone_settings: Vec::new(),
        }
    }

    /// Sessions to the source with `session` (its TLS from the source
    /// URL's `sslmode`). The clone's own server is reached over loopback
    /// after [`ControlPlane::clone_endpoint`] has checked who listens, with
    /// TLS when it offers it.
    pub fn with_session(mut self, session: SessionSettings) -> Self {
        self.session = session;
        self
    }

    /// New clones start with these settings over the source's.
    pub fn with_clone_settings(mut self, settings: Vec<(String, String)>) -> Self {
        self.clone_settings = settings;
        self
    }

    fn clone_session_settings(&self) -> SessionSettings {
        SessionSettings {
            tls: clonesync::pg::Tls::Prefer,
            ..self.session.clone()
        }
    }

    /// Clone a server clonesync started.
    pub fn for_server(source: &LocalServer, dbname: &str, clones_dir: &Path) -> Self {
        LocalControlPlane::new(
            source.endpoint(dbname),
            clones_dir,
            source.binaries().clone(),
            source.run_as(),
        )
    }

    fn clone_dir(&self, clone_id: &str) -> Result<PathBuf> {
        if clone_id.is_empty()
            || !clone_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::invalid(format!(
                "clone id {clone_id:?} must be letters, digits, '-' and '_'"
            )));
        }
        Ok(self.clones_dir.join(clone_id))
    }

    /// A handle to the clone's server (running or not).
    pub fn clone_server(&self, clone_id: &str) -> Result<Option<LocalServer>> {
        let dir = self.clone_dir(clone_id)?;
        Ok(read_record(&dir)?.map(|record| self.server_at(dir, record.port)))
    }

    fn server_at(&self, dir: PathBuf, port: u16) -> LocalServer {
        LocalServer::open(
            dir,
            port,
            &self.source.user,
            self.source().password.unwrap_or_else(|| Secret::new("")),
            self.bins.clone(),
            self.run_as,
        )
    }

    /// The `sslmode` of the connections the servers make to the source
    /// (the base backup, the clone's recovery): encrypted whenever
    /// clonesync's own sessions are, unverified, as the subscription's.
    fn server_sslmode(&self) -> &'static str {
        self.session.tls.subscription_sslmode().unwrap_or("disable")
    }

    /// How to reach the clone as the superuser at the address given, without
    /// checking who listens there (tests; the steps use
    /// [`ControlPlane::clone_endpoint`], which checks).
    pub fn clone_login(&self, clone: &CloneInfo) -> Endpoint {
        Endpoint {
            host: clone.host.clone(),
            port: clone.port,
            ..self.source()
        }
    }

    /// The source login with the secret's current password.
    fn source(&self) -> Endpoint {
        Endpoint {
            password: self.secret().current.password.clone(),
            ..self.source.clone()
        }
    }

    fn secret(&self) -> std::sync::MutexGuard<'_, SourceSecret> {
        self.secret.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rotate the source login's password as a Secrets Manager rotation
    /// does: set the new password on the source (its `setSecret` step),
    /// then make it the current version and the old one the previous
    /// (`finishSecret`). Returns the new version's id. Sessions already
    /// open keep working; new ones need the new password.
    pub async fn rotate_source_password(&self, password: Secret) -> Result<String> {
        let source = pg::connect(&self.source(), &self.session).await?;
        pg::login::set_own_password(&source, &password).await?;
        let mut secret = self.secret();
        let id = (secret.current.id.parse::<u64>().unwrap_or(0) + 1).to_string();
        let previous = std::mem::replace(
            &mut secret.current,
            SecretVersion {
                id: id.clone(),
                password: Some(password),
            },
        );
        secret.previous = Some(previous);
        Ok(id)
    }

    async fn make_clone<F>(
        &self,
        clone_id: &str,
        dir: &Path,
        choose_target: F,
    ) -> Result<LocalCloneRecord>
    where
        F: AsyncFnOnce(&Client) -> Result<Lsn>,
    {
        let run_as = self.run_as;
        std::fs::create_dir_all(dir).map_err(|e| Error::local_file("create", dir, e))?;
        if let Some(run_as) = run_as {
            run_as.own(dir)?;
        }
        let port = match self.clone_port {
            Some(port) => port,
            None => crate::server::free_port()?,
        };
        let mut clone = self.server_at(dir.to_path_buf(), port);

        // 1. The copy. The password goes through the environment, never argv.
        clone
            .run(
                "pg_basebackup",
                Command::new(clone.binaries().program("pg_basebackup"))
                    .args(["-h", &self.source.host, "-p", &self.source.port.to_string()])
                    .args(["-U", &self.source.user, "-D"])
                    .arg(clone.data_dir())
                    .args(["-X", "stream", "-c", "fast", "-N"])
                    .env(
                        "PGPASSWORD",
                        self.source()
                            .password
                            .as_ref()
                            .map(Secret::expose)
                            .unwrap_or(""),
                    )
                    .env("PGAPPNAME", format!("clonesync_basebackup_{clone_id}"))
                    .env("PGSSLMODE", self.server_sslmode()),
            )
            .await
            .map_err(|e| Error::CloneFailed {
                reason: e.to_string(),
                cause: Some(Box::new(e)),
            })?;

        // 2. The clone's start LSN, chosen after the copy.
        let source = pg::connect(&self.source(), &self.session).await?;
        let start_lsn = choose_target(&source).await?;
        drop(source);

        // 3. Recovery settings in a file of their own, removed as soon as
        // the server has started (it holds the source password in
        // primary_conninfo, which the server keeps in memory once read).
        let recovery_file = clone.data_dir().join("clonesync_recovery.conf");
        let primary = Endpoint {
            dbname: "postgres".into(),
            ..self.source()
        };
        let primary_conninfo = format!(
            "{} application_name=clonesync_clone_{}",
            primary
                .conninfo_with_sslmode(Some(self.server_sslmode()))
                .expose(),
            clone_id.replace('-', "_")
        );
        let recovery = format!(
            "primary_conninfo = {}\nrecovery_target_lsn = '{start_lsn}'\n\
             recovery_target_inclusive = off\nrecovery_target_action = 'promote'\n\
             recovery_target_timeline = 'current'\n",
            conf_value(&primary_conninfo)
        );
        write_private(&recovery_file, &recovery, run_as)?;
        let socket_dir = dir.display().to_string();
        clone.append_settings(&[
            ("unix_socket_directories", &socket_dir),
            ("include_if_exists", "clonesync_recovery.conf"),
        ])?;
        write_private(&clone.data_dir().join("standby.signal"), "", run_as)?;
        clone.append_settings(&[("port", &clone.port.to_string())])?;
        let group: Vec<(&str, &str)> = self
            .clone_settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        clone.append_settings(&group)?;

        // 4. Start, and wait for recovery to reach the target and promote.
        let started = clone.start().await;
        let _ = std::fs::remove_file(&recovery_file);
        started.map_err(|e| Error::CloneFailed {
            reason: e.to_string(),
            cause: Some(Box::new(e)),
        })?;
        let endpoint = clone.endpoint(&self.source.dbname);
        let session = self.clone_session_settings();
        let promoted = wait_until(self.promote_timeout, || async {
            match pg::connect(&endpoint, &session).await {
                Ok(c) => matches!(server::in_recovery(&c).await, Ok(false)),
                Err(_) => false,
            }
        })
        .await;
        if !promoted {
            return Err(Error::CloneFailed {
                reason: format!(
                    "clone did not reach {start_lsn} and promote within {:?}; log:\n{}",
                    self.promote_timeout,
                    clone.log_tail(15)
                ),
                cause: None,
            });
        }
        let record = LocalCloneRecord {
            clone_id: clone_id.to_string(),
            port: clone.port,
            start_lsn,
        };
        write_record(dir, &record)?;
        tracing::info!(clone = clone_id, port = clone.port, %start_lsn, "local clone promoted");
        Ok(record)
    }
    /// Make the clone with its start LSN chosen by `choose_target`, which
    /// runs on the source after the copy is taken (the target must not be
    /// before the end of the copy, nor after the source's flushed WAL).
    /// [`ControlPlane::create_clone`] uses [`current_wal_lsn`].
    pub async fn create_clone_at<F>(&self, clone_id: &str, choose_target: F) -> Result<CloneInfo>
    where
        F: AsyncFnOnce(&Client) -> Result<Lsn>,
    {
        let dir = self.clone_dir(clone_id)?;
        let record = match read_record(&dir)? {
            Some(record) => {
                let mut server = self.server_at(dir.clone(), record.port);
                if !server.is_running() {
                    server.start().await?;
                }
                if server.port != record.port {
                    write_record(
                        &dir,
                        &LocalCloneRecord {
                            port: server.port,
                            ..record.clone()
                        },
                    )?;
                }
                LocalCloneRecord {
                    port: server.port,
                    ..record
                }
            }
            None => {
                if dir.exists() {
                    tracing::warn!(clone = clone_id, "discarding a half-made clone");
                    self.server_at(dir.clone(), 0).stop_now();
                    kill_processes_in(&dir).await;
                    std::fs::remove_dir_all(&dir)
                        .map_err(|e| Error::local_file("remove", &dir, e))?;
                }
                match self.make_clone(clone_id, &dir, choose_target).await {
                    Ok(record) => record,
                    Err(error) => {
                        // A failed clone is not recorded as created, so
                        // cleanup would never find it: remove it here.
                        self.server_at(dir.clone(), 0).stop_now();
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(error);
                    }
                }
            }
        };
        Ok(CloneInfo {
            clone_id: record.clone_id,
            host: "127.0.0.1".into(),
            port: record.port,
        })
    }
}

/// The default clone target: `pg_current_wal_lsn()` read after the copy.
/// A record is then written after it, so recovery has a record at or past
/// the target to stop before even when the source is idle (a
/// non-transactional logical message, which pgoutput skips unless asked
/// for messages).
pub async fn current_wal_lsn(source: &Client) -> Result<Lsn> {
    let lsn = wal::current_lsn(source).await?;
    wal::emit_wal_marker(source, "clone target").await?;
    Ok(lsn)
}

const RECORD_FILE: &str = "clone.json";

fn read_record(dir: &Path) -> Result<Option<LocalCloneRecord>> {
    let path = dir.join(RECORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::local_record(path.display().to_string(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::local_file("read", path, e)),
    }
}

fn write_record(dir: &Path, record: &LocalCloneRecord) -> Result<()> {
    // Written to a temporary name and renamed: the record's presence is what
    // marks the clone as finished.
    let tmp = dir.join("clone.json.tmp");
    let text =
        serde_json::to_string_pretty(record).map_err(|e| Error::local_record("clone record", e))?;
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, dir.join(RECORD_FILE)))
        .map_err(|e| Error::local_file("write", dir.join(RECORD_FILE), e))
}

impl ControlPlane for LocalControlPlane {
    async fn preflight(&self) -> Result<Vec<PreflightFailure>> {
        let mut failures = Vec::new();
        if !self.bins.program("pg_basebackup").is_file() {
            failures.push(PreflightFailure {
                check: "local_clone_binaries".into(),
                detail: "pg_basebackup is missing".into(),
                hint: "install the PostgreSQL server package matching the source".into(),
            });
        }
        // pg_basebackup refuses a server of another major version, but
        // only after the slot exists: say so now.
        if let Some(binaries) = binaries_major(&self.bins.program("pg_basebackup")).await {
            let source = pg::connect(&self.source(), &self.session).await?;
            let source_major = server::facts(&source).await?.version_num / 10000;
            if i64::from(binaries) != i64::from(source_major) {
                failures.push(PreflightFailure {
                    check: "local_clone_binaries_version".into(),
                    detail: format!(
                        "the local PostgreSQL binaries are version {binaries}, the source is {source_major}"
                    ),
                    hint: format!(
                        "install PostgreSQL {source_major}'s server binaries (`bash tools/install` installs 16-18) and point PG_BIN at them, or unset PG_BIN to have them found"
                    ),
                });
            }
        }
        if let Some(port) = self.clone_port {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                failures.push(PreflightFailure {
                    check: "clone_port".into(),
                    detail: format!("port {port} on 127.0.0.1 is in use"),
                    hint: "give a free --clone-port, or none (a free one is chosen)".into(),
                });
            }
        }
        Ok(failures)
    }

    fn extra_senders(&self) -> i64 {
        LOCAL_CLONE_EXTRA_SENDERS
    }

    async fn create_clone(&self, clone_id: &str) -> Result<CloneInfo> {
        self.create_clone_at(clone_id, current_wal_lsn).await
    }

    async fn clone_start_lsn(&self, clone: &CloneInfo, _clone_client: &Client) -> Result<Lsn> {
        let dir = self.clone_dir(&clone.clone_id)?;
        read_record(&dir)?
            .map(|r| r.start_lsn)
            .ok_or_else(|| Error::CloneNotReady {
                clone_id: clone.clone_id.clone(),
                status: "no finished local clone".into(),
            })
    }

    async fn delete_clone(&self, clone_id: &str) -> Result<bool> {
        let dir = self.clone_dir(clone_id)?;
        if !dir.exists() {
            return Ok(false);
        }
        let server = self.server_at(dir.clone(), 0);
        server.stop().await.or_else(|_| {
            server.stop_now();
            Ok::<(), Error>(())
        })?;
        // A run killed during the copy leaves its pg_basebackup (or a
        // server) working in the directory: stop those too.
        kill_processes_in(&dir).await;
        std::fs::remove_dir_all(&dir).map_err(|e| Error::local_file("remove", &dir, e))?;
        Ok(true)
    }

    async fn source_login(&self) -> Result<SourceLogin> {
        let version = self.secret().current.id.clone();
        Ok(SourceLogin {
            endpoint: self.source(),
            version,
        })
    }

    async fn previous_clone_endpoint(&self, clone: &CloneInfo) -> Result<Option<Endpoint>> {
        let Some(previous) = self.secret().previous.clone() else {
            return Ok(None);
        };
        Ok(Some(Endpoint {
            password: previous.password,
            ..self.clone_endpoint(clone).await?
        }))
    }

    fn session(&self) -> SessionSettings {
        self.session.clone()
    }

    fn clone_session(&self) -> SessionSettings {
        self.clone_session_settings()
    }

    /// The clone's address comes from its own record, never from the
    /// `clone` handed in (a state anyone could have written), and the
    /// login is given only after checking that the port is held by the
    /// server clonesync started for it.
    async fn clone_endpoint(&self, clone: &CloneInfo) -> Result<Endpoint> {
        let dir = self.clone_dir(&clone.clone_id)?;
        let record = read_record(&dir)?.ok_or_else(|| Error::CloneNotReady {
            clone_id: clone.clone_id.clone(),
            status: "no finished local clone".into(),
        })?;
        verify_server(&dir.join("data"), record.port)?;
        Ok(self.clone_login(&CloneInfo {
            clone_id: record.clone_id,
            host: "127.0.0.1".into(),
            port: record.port,
        }))
    }
}

/// The major version `pg_basebackup --version` reports
/// (`pg_basebackup (PostgreSQL) 15.8 (Debian ...)`); `None` when it cannot
/// be run or read (the missing program is reported on its own).
async fn binaries_major(program: &Path) -> Option<u32> {
    let output = Command::new(program).arg("--version").output().await.ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.split(')').nth(1)?.split_whitespace().next()?;
    version.split('.').next()?.parse().ok()
}

/// Kill every process (but this one) whose command line names a path
/// under `dir`: an orphaned `pg_basebackup` still copying into a half-made
/// clone, or its server, after the run that started them was killed.
async fn kill_processes_in(dir: &Path) {
    let needle = dir.display().to_string();
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let pids: Vec<u32> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|bytes| {
                    bytes
                        .split(|b| *b == 0)
                        .any(|arg| String::from_utf8_lossy(arg).starts_with(&needle))
                })
                .unwrap_or(false)
        })
        .collect();
    for pid in pids {
        tracing::warn!(pid, dir = %needle, "stopping a process left working in a clone's directory");
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .await;
    }
}

/// The server whose data directory is `data` runs and holds `port`: its
/// `postmaster.pid` names the port and a live process, and that process
/// owns the listening socket. Anything else (a stopped clone whose port
/// someone else took, a stale pid file) is `Local.CloneUnverified`.
fn verify_server(data: &Path, port: u16) -> Result<()> {
    let unverified = |why: String| Error::LocalCloneUnverified { port, reason: why };
    let pid_file = data.join("postmaster.pid");
    let text = match std::fs::read_to_string(&pid_file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(unverified("the clone's server is not running".into()))
        }
        Err(e) => return Err(Error::local_file("read", pid_file, e)),
    };
    let lines: Vec<&str> = text.lines().collect();
    let pid: u32 = lines
        .first()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| unverified("postmaster.pid names no process".into()))?;
    let recorded_port: Option<u16> = lines.get(3).and_then(|l| l.trim().parse().ok());
    if recorded_port != Some(port) {
        return Err(unverified(format!(
            "the clone's server listens on {recorded_port:?}, not on the recorded port"
        )));
    }
    if !crate::peer::listener_owned_by(port, pid)? {
        return Err(unverified(format!(
            "the port is not held by the clone's server (process {pid})"
        )));
    }
    Ok(())
}

impl LocalControlPlane {
    /// A local clone is ready once its record is written (after promote);
    /// `Clone.NotReady` before.
    /// Whether the clone's directory exists (made, half-made or stopped).
    pub fn clone_exists(&self, clone_id: &str) -> Result<bool> {
        Ok(self.clone_dir(clone_id)?.exists())
    }

    pub async fn clone_status(&self, clone_id: &str) -> Result<CloneInfo> {
        let dir = self.clone_dir(clone_id)?;
        match read_record(&dir)? {
            Some(record) => Ok(CloneInfo {
                clone_id: record.clone_id,
                host: "127.0.0.1".into(),
                port: record.port,
            }),
            None => Err(Error::CloneNotReady {
                clone_id: clone_id.to_string(),
                status: "no finished local clone".into(),
            }),
        }
    }
}
