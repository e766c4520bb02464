//! Local PostgreSQL servers started from the machine's own binaries.
//!
//! A server lives in one directory: `data/` (the cluster), `server.log`, and
//! its Unix socket. PostgreSQL refuses to run as root, so when clonesync
//! runs as root the server programs run as the `postgres` OS user (or the
//! one named by `CLONESYNC_PG_OS_USER`), and the directory is handed to it.
//! Logins use SCRAM passwords over TCP on 127.0.0.1, as in the cloud.

use clonesync::error::{Error, Result};
use clonesync::pg::{Endpoint, Secret};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

/// Where the PostgreSQL server programs are.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub dir: PathBuf,
}

/// The environment variable that picks a PostgreSQL major for everything
/// local (the tests run once per major with it).
pub const PG_MAJOR_VAR: &str = "CLONESYNC_PG_MAJOR";

const SERVER_PROGRAMS: [&str; 4] = ["initdb", "pg_ctl", "postgres", "pg_basebackup"];

impl PgBinaries {
    /// `PG_BIN` if set; else, when `CLONESYNC_PG_MAJOR` names a major, that
    /// major's binaries ([`PgBinaries::for_major`]); else `pg_config
    /// --bindir`, else the newest `/usr/lib/postgresql/<version>/bin`
    /// (Debian's layout).
    pub fn locate() -> Result<Self> {
        if std::env::var_os("PG_BIN").is_none() {
            if let Some(major) = requested_major()? {
                return PgBinaries::for_major(major);
            }
        }
        let dir = match std::env::var_os("PG_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => std::process::Command::new("pg_config")
                .arg("--bindir")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
                .filter(|dir| dir.join("initdb").is_file())
                .or_else(newest_debian_bindir)
                .ok_or_else(|| Error::LocalBinariesMissing {
                    reason: "no PostgreSQL server binaries found; install postgresql-15 (or later) or set PG_BIN".into(),
                })?,
        };
        PgBinaries::complete(dir)
    }

    /// The binaries of one major: `PG_BIN` when set (the user's choice wins;
    /// preflight names a mismatch), else Debian's
    /// `/usr/lib/postgresql/<major>/bin`, else the build `tools/install`
    /// puts under `$CLONESYNC_TOOLS/postgresql/<major>/bin`.
    pub fn for_major(major: u32) -> Result<Self> {
        if let Some(dir) = std::env::var_os("PG_BIN") {
            return PgBinaries::complete(PathBuf::from(dir));
        }
        let tools = std::env::var_os("CLONESYNC_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/clonesync-tools"));
        let candidates = [
            PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
            tools.join("postgresql").join(major.to_string()).join("bin"),
        ];
        candidates
            .iter()
            .find(|dir| SERVER_PROGRAMS.iter().all(|p| dir.join(p).is_file()))
            .map(|dir| PgBinaries { dir: dir.clone() })
            .ok_or_else(|| Error::LocalBinariesMissing {
                reason: format!(
                    "no PostgreSQL {major} server binaries in {} or {}; run `bash tools/install` \
                     (16-18) or install postgresql-{major}, or set PG_BIN",
                    candidates[0].display(),
                    candidates[1].display()
                ),
            })
    }

    fn complete(dir: PathBuf) -> Result<Self> {
        for program in SERVER_PROGRAMS {
            if !dir.join(program).is_file() {
                return Err(Error::LocalBinariesMissing {
                    reason: format!(
                        "{program} not found in {}; install postgresql-15 (or later) or set PG_BIN",
                        dir.display()
                    ),
                });
            }
        }
        Ok(PgBinaries { dir })
    }

    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The major `CLONESYNC_PG_MAJOR` asks for, if any.
pub fn requested_major() -> Result<Option<u32>> {
    match std::env::var(PG_MAJOR_VAR) {
        Err(_) => Ok(None),
        Ok(text) if text.trim().is_empty() => Ok(None),
        Ok(text) => text
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|major| *major >= 10)
            .map(Some)
            .ok_or_else(|| Error::LocalBinariesMissing {
                reason: format!(
                    "{PG_MAJOR_VAR}={text:?} is not a PostgreSQL major version (e.g. 17)"
                ),
            }),
    }
}

fn newest_debian_bindir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// The OS account server programs run as, when it is not the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// None when not root; else the `postgres` account (or
    /// `CLONESYNC_PG_OS_USER`), read from /etc/passwd.
    pub fn detect() -> Result<Option<RunAs>> {
        let euid = std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .map_err(|e| Error::local_file("read", "/proc/self", e))?;
        if euid != 0 {
            return Ok(None);
        }
        let user = std::env::var("CLONESYNC_PG_OS_USER").unwrap_or_else(|_| "postgres".into());
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| Error::local_file("read", "/etc/passwd", e))?;
        passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.len() > 3 && fields[0] == user)
            .and_then(|fields| {
                Some(RunAs {
                    uid: fields[2].parse().ok()?,
                    gid: fields[3].parse().ok()?,
                })
            })
            .map(Some)
            .ok_or_else(|| Error::LocalAccountMissing {
                reason: format!(
                    "running as root and OS user {user:?} does not exist; PostgreSQL refuses to run as root"
                ),
            })
    }

    /// Give a path (not recursively) to this account.
    pub fn own(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|e| Error::local_file("hand over (chown)", path, e))
    }
}

/// A free TCP port on 127.0.0.1 at the moment of asking.
pub fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::LocalPortUnavailable {
            reason: format!("no free port: {e}"),
            cause: Some(Box::new(e)),
        })
}

/// Quote a value for postgresql.conf, whose parser reads backslash
/// escapes inside quotes (so `\` must be doubled before `'` is).
pub(crate) fn conf_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// One local server.
#[derive(Debug, Clone)]
pub struct LocalServer {
    pub dir: PathBuf,
    pub port: u16,
    pub superuser: String,
    pub password: Secret,
    bins: PgBinaries,
    run_as: Option<RunAs>,
}

impl LocalServer {
    /// A handle to a server directory that already exists.
    pub fn open(
        dir: PathBuf,
        port: u16,
        superuser: &str,
        password: Secret,
        bins: PgBinaries,
        run_as: Option<RunAs>,
    ) -> Self {
        LocalServer {
            dir,
            port,
            superuser: superuser.to_string(),
            password,
            bins,
            run_as,
        }
    }

    /// `initdb` a new cluster in `dir/data` with the given settings
    /// (appended to postgresql.conf). Not started.
    pub async fn init(
        dir: &Path,
        superuser: &str,
        password: Secret,
        settings: &[(&str, &str)],
    ) -> Result<Self> {
        let server = LocalServer::prepare(dir, superuser, password)?;
        // The password reaches initdb through a file readable only by the
        // server's account, never through the command line.
        let pwfile = dir.join("initdb.pw");
        write_private(&pwfile, server.password.expose(), server.run_as)?;
        let result = server
            .run(
                "initdb",
                Command::new(server.bins.program("initdb"))
                    .arg("-D")
                    .arg(server.data_dir())
                    .args([
                        "-U",
                        superuser,
                        "-A",
                        "scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C",
                        "-N",
                    ])
                    .arg(format!("--pwfile={}", pwfile.display())),
            )
            .await;
        let _ = std::fs::remove_file(&pwfile);
        result?;
        server.configure(settings)?;
        Ok(server)
    }

    /// A new cluster in `dir/data` copied from the stopped cluster in
    /// `template` (made by [`LocalServer::init`] with the same superuser),
    /// with its own password and the given settings; not started. For
    /// many throwaway servers of one major (the tests' fixture): a copy
    /// and a single-user run cost about half an `initdb` (0.43 s against
    /// 0.84 s on 15). The password reaches the copy as a SCRAM verifier,
    /// never in clear, and no error message carries the verifier.
    pub async fn init_from_copy(
        dir: &Path,
        template: &Path,
        superuser: &str,
        password: Secret,
        settings: &[(&str, &str)],
    ) -> Result<Self> {
        let server = LocalServer::prepare(dir, superuser, password)?;
        server
            .run(
                "copy the template cluster",
                Command::new("cp")
                    .arg("-a")
                    .arg(template.join("data"))
                    .arg(server.data_dir()),
            )
            .await?;
        let verifier =
            postgres_protocol::password::scram_sha_256(server.password.expose().as_bytes());
        let statement = format!(
            "ALTER ROLE {} PASSWORD {}\n",
            clonesync::pg::quote::ident(superuser),
            clonesync::pg::quote::literal(&verifier)
        );
        let what = "set the copy's password (single-user mode)";
        let output = server
            .run_fed(
                what,
                Command::new(server.bins.program("postgres"))
                    .arg("--single")
                    .arg("-D")
                    .arg(server.data_dir())
                    .arg("postgres"),
                &statement,
                &[&verifier],
            )
            .await?;
        // Single-user mode reports a failed command on stderr and still
        // exits 0 at the end of its input.
        if String::from_utf8_lossy(&output.stderr).contains("ERROR:") {
            return Err(server.failure(what, &output, &[&statement, &verifier]));
        }
        server.configure(settings)?;
        Ok(server)
    }

    /// The handle of a new server in `dir` (made, and handed to the server
    /// account), on a free port; nothing in it yet.
    fn prepare(dir: &Path, superuser: &str, password: Secret) -> Result<Self> {
        let bins = PgBinaries::locate()?;
        let run_as = RunAs::detect()?;
        std::fs::create_dir_all(dir).map_err(|e| Error::local_file("create", dir, e))?;
        if let Some(run_as) = run_as {
            run_as.own(dir)?;
        }
        Ok(LocalServer::open(
            dir.to_path_buf(),
            free_port()?,
            superuser,
            password,
            bins,
            run_as,
        ))
    }

    /// A new cluster's settings: TCP on 127.0.0.1, its socket in its
    /// directory, `settings`, its port.
    fn configure(&self, settings: &[(&str, &str)]) -> Result<()> {
        let socket_dir = self.dir.display().to_string();
        let mut all: Vec<(&str, &str)> = vec![
            ("listen_addresses", "127.0.0.1"),
            ("unix_socket_directories", &socket_dir),
        ];
        all.extend_from_slice(settings);
        self.append_settings(&all)?;
        self.set_port(self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// How to log in to `dbname` as the superuser.
    pub fn endpoint(&self, dbname: &str) -> Endpoint {
        Endpoint {
            host: "127.0.0.1".into(),
            port: self.port,
            dbname: dbname.into(),
            user: self.superuser.clone(),
            password: Some(self.password.clone()),
        }
    }

    pub fn run_as(&self) -> Option<RunAs> {
        self.run_as
    }

    pub fn binaries(&self) -> &PgBinaries {
        &self.bins
    }

    /// Append `name = 'value'` lines to postgresql.conf (the last line for
    /// a name wins).
    pub fn append_settings(&self, settings: &[(&str, &str)]) -> Result<()> {
        let mut text = String::from("\n# set by clonesync\n");
        for (name, value) in settings {
            text.push_str(&format!("{name} = {}\n", conf_value(value)));
        }
        let path = self.data_dir().join("postgresql.conf");
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Error::local_file("write", &path, e))
    }

    fn set_port(&self, port: u16) -> Result<()> {
        self.append_settings(&[("port", &port.to_string())])
    }

    /// Start and wait until it accepts connections. If the port was taken
    /// meanwhile (another test grabbed it), move to a new one and retry.
    pub async fn start(&mut self) -> Result<()> {
        let mut last_error = None;
        for _attempt in 0..4 {
            let result = self
                .run(
                    "pg_ctl start",
                    Command::new(self.bins.program("pg_ctl"))
                        .arg("-D")
                        .arg(self.data_dir())
                        .arg("-l")
                        .arg(self.log_file())
                        .args(["-w", "-t", "120", "start"]),
                )
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) => {
                    let log = self.log_tail(20);
                    if log.contains("could not bind") || log.contains("Address already in use") {
                        self.port = free_port()?;
                        self.set_port(self.port)?;
                        last_error = Some(e);
                        continue;
                    }
                    return Err(Error::LocalServer {
                        reason: format!("{e}; server log:\n{log}"),
                        cause: Some(Box::new(e)),
                    });
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::local_server("could not start server")))
    }

    /// Fast shutdown (waits for clients to be disconnected). No error when
    /// the server is not running.
    pub async fn stop(&self) -> Result<()> {
        if !self.data_dir().join("postmaster.pid").exists() {
            return Ok(());
        }
        self.run(
            "pg_ctl stop",
            Command::new(self.bins.program("pg_ctl"))
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "fast", "-w", "-t", "60", "stop"]),
        )
        .await
        .map(|_| ())
    }

    /// Immediate shutdown without an async runtime, for `Drop`.
    pub fn stop_now(&self) {
        if !self.data_dir().join("postmaster.pid").exists() {
            return;
        }
        let mut command = std::process::Command::new(self.bins.program("pg_ctl"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-t", "30", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(run_as) = self.run_as {
            use std::os::unix::process::CommandExt;
            command.uid(run_as.uid).gid(run_as.gid);
        }
        let _ = command.status();
    }

    pub fn is_running(&self) -> bool {
        let mut command = std::process::Command::new(self.bins.program("pg_ctl"));
        command
            .arg("-D")
            .arg(self.data_dir())
            .arg("status")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(run_as) = self.run_as {
            use std::os::unix::process::CommandExt;
            command.uid(run_as.uid).gid(run_as.gid);
        }
        command.status().map(|s| s.success()).unwrap_or(false)
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The whole server log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// Run a server program as the server's account, from the server's
    /// directory; its stderr becomes the error on failure.
    pub(crate) async fn run(&self, what: &str, command: &mut Command) -> Result<Output> {
        self.run_fed(what, command, "", &[]).await
    }

    /// [`LocalServer::run`] with `input` on the program's standard input
    /// (none when empty). The input and `hidden` are taken for secrets: a
    /// failure's message never carries them.
    async fn run_fed(
        &self,
        what: &str,
        command: &mut Command,
        input: &str,
        hidden: &[&str],
    ) -> Result<Output> {
        use std::process::Stdio;
        use tokio::io::AsyncWriteExt;
        if let Some(run_as) = self.run_as {
            // The server's own libpq connections (a subscription, a
            // walreceiver) look for client certificates and .pgpass under
            // $HOME; root's home is not the server account's to read.
            command
                .uid(run_as.uid)
                .gid(run_as.gid)
                .env("HOME", &self.dir);
        }
        let cannot = |stage: &str, e: std::io::Error| Error::LocalServer {
            reason: format!("{what}: {stage}: {e}"),
            cause: Some(Box::new(e)),
        };
        let mut child = command
            .current_dir(&self.dir)
            .kill_on_drop(true)
            .stdin(if input.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| cannot("cannot start", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .await
                .map_err(|e| cannot("write its input", e))?;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| cannot("wait for it", e))?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(self.failure(what, &output, &[&[input], hidden].concat()))
        }
    }

    /// A program's failure in its own words, without the login's password
    /// or the `secrets` given, even if the program echoed them.
    fn failure(&self, what: &str, output: &Output, secrets: &[&str]) -> Error {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        for secret in
            std::iter::once(self.password.expose()).chain(secrets.iter().map(|s| s.trim()))
        {
            if !secret.is_empty() {
                stderr = stderr.replace(secret, "<redacted>");
            }
        }
        Error::local_server(format!("{what} failed ({}): {stderr}", output.status))
    }
}

/// Write a file only its owner (the server's account) can read.
pub(crate) fn write_private(path: &Path, text: &str, run_as: Option<RunAs>) -> Result<()> {
    std::fs::write(path, text)
        .and_then(|_| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| Error::local_file("write", path, e))?;
    if let Some(run_as) = run_as {
        run_as.own(path)?;
    }
    Ok(())
}

/// Poll `check` until it returns true or `timeout` passes.
pub(crate) async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A failing program's words keep their sense but lose every secret:
    /// the login's password and what it was fed (a SCRAM verifier here),
    /// even when it echoes them.
    #[test]
    fn a_failure_names_the_program_and_carries_no_secret() {
        let server = LocalServer::open(
            PathBuf::from("/nonexistent"),
            0,
            "admin",
            Secret::new("pw-hunter2"),
            PgBinaries {
                dir: PathBuf::from("/nonexistent"),
            },
            None,
        );
        let statement = "ALTER ROLE admin PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b'";
        let output = Output {
            status: std::process::ExitStatus::from_raw(256),
            stdout: Vec::new(),
            stderr: format!(
                "ERROR: bad\nSTATEMENT: {statement}\nDETAIL: SCRAM-SHA-256$4096:c2FsdA==$a:b pw-hunter2"
            )
            .into_bytes(),
        };
        let message = server
            .failure(
                "set it",
                &output,
                &[statement, "SCRAM-SHA-256$4096:c2FsdA==$a:b"],
            )
            .to_string();
        assert!(
            message.contains("set it failed") && message.contains("ERROR: bad"),
            "{message}"
        );
        assert!(
            !message.contains("SCRAM") && !message.contains("hunter2"),
            "{message}"
        );
        assert_eq!(message.matches("<redacted>").count(), 3, "{message}");
    }
}
