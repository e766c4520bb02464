//! moto, the AWS emulator, as a child process: Step Functions (in execute
//! mode, running the real ASL) and DynamoDB (the registry) for local runs
//! and tests.
//!
//! moto is pinned in a virtual environment under `$CLONESYNC_TOOLS`
//! (default `/var/cache/clonesync-tools`); [`ensure_installed`] creates it
//! when missing. `CLONESYNC_MOTO_SERVER` names another `moto_server`.
//!
//! moto's Step Functions engine sends every Lambda task to
//! `http://localhost:$MOTO_PORT`; [`MotoServer::start`] sets that to the
//! port of the local Lambda endpoint ([`crate::invoke`]).

mod forkserver;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use clonesync::aws::AwsClients;
use clonesync::error::{Cause, Error, Result};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pinned requirement; `tools/requirements.txt` holds the same line
/// (a contract test checks). 5.2.1 runs only one execution per process.
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";
/// moto's default account: one account plays source and target locally.
/// The registry table a local run creates in moto.
pub const REGISTRY_TABLE: &str = "clonesync-registry";
pub const ACCOUNT: &str = "123456789012";
/// The runs bucket a local run creates in moto (template.yaml's
/// `RunsBucket`).
pub const RUNS_BUCKET: &str = "clonesync-runs-local";
pub const REGION: &str = "eu-west-1";

fn tools_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("CLONESYNC_TOOLS").unwrap_or_else(|_| "/var/cache/clonesync-tools".into()),
    )
}

fn install_failed(reason: String, cause: Option<Cause>) -> Error {
    Error::LocalInstallFailed { reason, cause }
}

fn emulator_failed(reason: String, cause: Option<Cause>) -> Error {
    Error::LocalEmulatorFailed { reason, cause }
}

/// The `moto_server` to run.
pub fn moto_server() -> PathBuf {
    if let Ok(path) = std::env::var("CLONESYNC_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    tools_dir().join("venv/bin/moto_server")
}

/// Create the virtual environment with the pinned moto when `moto_server`
/// is missing (needs `python3` with `venv` and the package index).
pub fn ensure_installed() -> Result<PathBuf> {
    let server = moto_server();
    if server.is_file() {
        return Ok(server);
    }
    let venv = tools_dir().join("venv");
    tracing::info!(venv = %venv.display(), requirement = MOTO_REQUIREMENT, "installing moto");
    let run = |command: &mut Command, what: &str| -> Result<()> {
        let status = command
            .status()
            .map_err(|e| install_failed(format!("{what}: cannot start"), Some(Box::new(e))))?;
        if status.success() {
            Ok(())
        } else {
            Err(install_failed(format!("{what} failed ({status})"), None))
        }
    };
    std::fs::create_dir_all(tools_dir())
        .map_err(|e| Error::local_file("create", tools_dir(), e))?;
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            MOTO_REQUIREMENT,
        ]),
        "pip install moto",
    )?;
    if server.is_file() {
        Ok(server)
    } else {
        Err(install_failed(
            format!(
                "{} is still missing after installing moto",
                server.display()
            ),
            None,
        ))
    }
}

/// A moto server reachable only by this account, stopped on drop and when
/// this process dies.
///
/// moto has no authentication, so it listens on a Unix socket in a private
/// (0700) directory, and clonesync's SDK clients reach it through a
/// forwarder on 127.0.0.1 that serves only connections from this account
/// ([`crate::peer::same_account`]). moto runs under a small shell that
/// reads this process's pipe and stops moto when it closes: on drop, and
/// when clonesync is killed (a SIGKILL closes the pipe too), so no moto
/// outlives its run.
pub struct MotoServer {
    supervision: Supervision,
    /// The forwarder's port: what the SDK clients use.
    pub port: u16,
    forwarding: Arc<AtomicBool>,
    // Last: the private directory goes after moto has stopped.
    _private: tempfile::TempDir,
}

/// How a moto server is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launch {
    /// A new `moto_server` process under the lifeline shell (about 4 s of
    /// CPU before it serves).
    Fresh,
    /// Forked from the warm parent (`moto/forkserver.rs`), shared by this
    /// account's runs: the same server without the start-up cost.
    Forked,
}

/// How moto is kept from outliving its handle.
enum Supervision {
    /// moto runs under a shell that stops it when `lifeline` closes.
    Shell {
        child: Child,
        lifeline: Option<std::process::ChildStdin>,
    },
    /// moto was forked by the warm parent ([`crate::moto`]'s
    /// `CLONESYNC_MOTO_FORKSERVER`) and exits when `lifeline` closes.
    Forked {
        pid: u32,
        lifeline: Option<std::os::unix::net::UnixStream>,
    },
}

/// The only variables of this process's environment moto is given: what
/// a shell and Python need to run. Everything else stays out, the
/// source's password (`PGPASSWORD`) and any AWS credentials first: moto
/// needs none, and a child's environment is readable through
/// `/proc/<pid>/environ` by its account for as long as it runs.
pub const MOTO_ENVIRONMENT: &[&str] =
    &["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ"];

/// The environment moto runs with, from this process's (`vars`): the
/// names in [`MOTO_ENVIRONMENT`], and `MOTO_PORT`, where moto's Step
/// Functions engine sends Lambda tasks.
pub fn moto_environment(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    lambda_port: u16,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    vars.into_iter()
        .filter(|(name, _)| MOTO_ENVIRONMENT.iter().any(|kept| name == kept))
        .chain([("MOTO_PORT".into(), lambda_port.to_string().into())])
        .collect()
}

/// The script moto runs under: start it on the socket given, wait for the
/// parent's pipe to close, stop it.
const LIFELINE: &str = "\"$1\" -H \"unix://$2\" -p 0 </dev/null >/dev/null 2>&1 & moto=$!; \
                        cat >/dev/null; kill $moto 2>/dev/null; wait $moto";
/// [`LIFELINE`] for a `moto_server` that is a Python script: its Python
/// runs moto's `main` after [`ENGINE_LIMITS`].
const LIFELINE_PYTHON: &str =
    "\"$1\" -c \"$3\" -H \"unix://$2\" -p 0 </dev/null >/dev/null 2>&1 & moto=$!; \
                        cat >/dev/null; kill $moto 2>/dev/null; wait $moto";
/// moto's Distributed Map worker takes its next item by calling itself,
/// one Python frame per item: past ~1,000 items per worker it dies of
/// RecursionError and the Map run never ends (seen at 5,000 items with
/// MaxConcurrency 4). Room for 10,000 items per worker; `forkserver.py`
/// sets the same.
const ENGINE_LIMITS: &str = "import sys, threading\n\
                             sys.setrecursionlimit(100_000)\n\
                             threading.stack_size(64 << 20)\n\
                             from moto.server import main\n\
                             main(sys.argv[1:])\n";

impl MotoServer {
    /// Start moto with its Lambda calls going to `lambda_port`, forked
    /// from the warm parent when `CLONESYNC_MOTO_FORKSERVER=1` asks for it
    /// and `moto_server` is a Python script, started afresh otherwise.
    pub fn start(lambda_port: u16) -> Result<MotoServer> {
        let forked = std::env::var("CLONESYNC_MOTO_FORKSERVER").is_ok_and(|v| v == "1")
            && python_of(&moto_server()).is_some();
        MotoServer::start_with(
            lambda_port,
            if forked {
                Launch::Forked
            } else {
                Launch::Fresh
            },
        )
    }

    /// Start moto the way `launch` says.
    pub fn start_with(lambda_port: u16, launch: Launch) -> Result<MotoServer> {
        let program = moto_server();
        if !program.is_file() {
            return Err(emulator_failed(
                format!(
                    "{} is missing (install it with tools/install, or set CLONESYNC_MOTO_SERVER)",
                    program.display()
                ),
                None,
            ));
        }
        let private = tempfile::Builder::new()
            .prefix("clonesync-moto-")
            .tempdir()
            .map_err(|e| Error::local_file("create", std::env::temp_dir(), e))?;
        std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::local_file("chmod", private.path(), e))?;
        let socket = private.path().join("moto.sock");
        let supervision = match launch {
            Launch::Fresh => start_under_shell(&program, &socket, lambda_port)?,
            Launch::Forked => {
                let python = python_of(&program).ok_or_else(|| {
                    emulator_failed(
                        format!(
                            "{} is not a Python script: moto cannot be forked from a warm parent",
                            program.display()
                        ),
                        None,
                    )
                })?;
                forkserver::fork(&python, &socket, lambda_port)?
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if Instant::now() > deadline {
                return Err(emulator_failed(
                    format!(
                        "moto_server did not listen on {} within 30 s",
                        socket.display()
                    ),
                    None,
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(|e| {
            Error::LocalPortUnavailable {
                reason: format!("bind the emulator's forwarder: {e}"),
                cause: Some(Box::new(e)),
            }
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::LocalPortUnavailable {
                reason: format!("the emulator forwarder's address: {e}"),
                cause: Some(Box::new(e)),
            })?
            .port();
        let forwarding = Arc::new(AtomicBool::new(true));
        forward(listener, socket, forwarding.clone());
        Ok(MotoServer {
            supervision,
            port,
            forwarding,
            _private: private,
        })
    }

    /// The process that holds moto's lifeline: the shell moto runs under
    /// (moto is its child), or the forked moto itself.
    pub fn supervisor_pid(&self) -> u32 {
        match &self.supervision {
            Supervision::Shell { child, .. } => child.id(),
            Supervision::Forked { pid, .. } => *pid,
        }
    }

    /// Whether moto was forked by the warm parent rather than started.
    pub fn forked(&self) -> bool {
        matches!(self.supervision, Supervision::Forked { .. })
    }

    /// moto's own socket, in its private directory.
    pub fn socket_path(&self) -> PathBuf {
        self._private.path().join("moto.sock")
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_sfn::config::Credentials::new(
                "testing", "testing", None, None, "moto",
            ))
            .load()
            .await
    }

    /// Every client against moto (one account plays source and target).
    pub async fn clients(&self) -> AwsClients {
        let config = self.sdk_config().await;
        AwsClients::from_configs(&config, &config)
    }

    /// Clients whose calls made inside a function ([`crate::iam`]) are
    /// refused with `AccessDeniedException` when its role does not allow
    /// them, as AWS does.
    pub async fn clients_checked(&self, iam: Arc<crate::iam::Enforcer>) -> AwsClients {
        use aws_smithy_http_client::tls;
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        let config = self
            .sdk_config()
            .await
            .to_builder()
            .http_client(crate::iam::EnforcingHttpClient::new(inner, iam))
            .build();
        AwsClients::from_configs(&config, &config)
    }

    /// Switch this process's Step Functions to running definitions (per
    /// process; without it executions only record their input).
    pub async fn enable_execution(&self) -> Result<()> {
        let body =
            r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#;
        post(self.port, "/moto-api/config", body).await
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.forwarding.store(false, Ordering::Relaxed);
        // Wakes the forwarder's accept, which then sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        match &mut self.supervision {
            Supervision::Shell { child, lifeline } => {
                drop(lifeline.take());
                let _ = child.wait();
            }
            Supervision::Forked { pid, lifeline } => {
                drop(lifeline.take());
                forkserver::await_exit(*pid);
            }
        }
    }
}

/// Start `program` on `socket` under the lifeline shell.
fn start_under_shell(
    program: &std::path::Path,
    socket: &std::path::Path,
    lambda_port: u16,
) -> Result<Supervision> {
    // Its own process group: a Ctrl-C at the terminal goes to clonesync
    // alone, which still needs moto to tear down in order.
    let mut command = Command::new("sh");
    match python_of(program) {
        Some(python) => command
            .arg("-c")
            .arg(LIFELINE_PYTHON)
            .arg("sh")
            .arg(python)
            .arg(socket)
            .arg(ENGINE_LIMITS),
        None => command
            .arg("-c")
            .arg(LIFELINE)
            .arg("sh")
            .arg(program)
            .arg(socket),
    };
    let mut child = command
        .env_clear()
        .envs(moto_environment(std::env::vars_os(), lambda_port))
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            emulator_failed(
                format!("start {}: {e}", program.display()),
                Some(Box::new(e)),
            )
        })?;
    let lifeline = child.stdin.take();
    Ok(Supervision::Shell { child, lifeline })
}

/// The Python that runs `program`, when its `#!` line names one (pip's
/// `moto_server` script).
fn python_of(program: &std::path::Path) -> Option<PathBuf> {
    let text = std::fs::read(program).ok()?;
    let first = text.split(|b| *b == b'\n').next()?;
    let interpreter = std::str::from_utf8(first.strip_prefix(b"#!")?).ok()?.trim();
    let python = PathBuf::from(interpreter);
    let name = python.file_name()?.to_str()?;
    (name.starts_with("python") && python.is_file()).then_some(python)
}

/// Serve `listener`'s connections from this account by moto's socket.
fn forward(listener: std::net::TcpListener, socket: PathBuf, running: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if !running.load(Ordering::Relaxed) {
                return;
            }
            let Ok(tcp) = stream else { continue };
            let ours = match (tcp.local_addr(), tcp.peer_addr()) {
                (Ok(local), Ok(peer)) => crate::peer::same_account(local, peer),
                _ => false,
            };
            if !ours {
                tracing::warn!(peer = ?tcp.peer_addr().ok(), "emulator: connection from another account refused");
                continue;
            }
            let Ok(unix) = std::os::unix::net::UnixStream::connect(&socket) else {
                continue;
            };
            let (Ok(tcp_back), Ok(unix_back)) = (tcp.try_clone(), unix.try_clone()) else {
                continue;
            };
            std::thread::spawn(move || pipe(tcp, unix));
            std::thread::spawn(move || pipe(unix_back, tcp_back));
        }
    });
}

/// Copy one direction until it ends, then end the other side's writing.
fn pipe(mut from: impl std::io::Read, mut to: impl std::io::Write + Shutdown) {
    let _ = std::io::copy(&mut from, &mut to);
    to.shut_write();
}

/// Half-closing a stream, for either kind of socket.
trait Shutdown {
    fn shut_write(&self);
}

impl Shutdown for std::net::TcpStream {
    fn shut_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

impl Shutdown for std::os::unix::net::UnixStream {
    fn shut_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// A bare HTTP/1.1 POST to moto's own API (not an AWS service, so no SDK).
async fn post(port: u16, path: &str, body: &str) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| emulator_failed(format!("connect to moto: {e}"), Some(Box::new(e))))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| emulator_failed(format!("write to moto: {e}"), Some(Box::new(e))))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| emulator_failed(format!("read from moto: {e}"), Some(Box::new(e))))?;
    let status = response.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(emulator_failed(
            format!(
                "moto {path}: {}",
                response.lines().next().unwrap_or("no response")
            ),
            None,
        ))
    }
}

/// The registry table as template.yaml defines it (partition key `pk`).
pub async fn create_registry(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let build = |e: aws_sdk_dynamodb::error::BuildError| {
        emulator_failed(format!("the registry table: {e}"), Some(Box::new(e)))
    };
    dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .map_err(build)?,
        )
        .send()
        .await
        .map_err(|e| clonesync::aws::fault::classify("dynamodb", "CreateTable", e))?;
    Ok(())
}

/// The runs bucket (its contents are the run's; nothing else reads them).
pub async fn create_runs_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<()> {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(REGION))
                .build(),
        )
        .send()
        .await
        .map_err(|e| clonesync::aws::fault::classify("s3", "CreateBucket", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moto_gets_no_password_and_no_credential() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("PGPASSWORD", "s3cret"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("AWS_SESSION_TOKEN", "t"),
            ("CLONESYNC_DB_TLS", "disable"),
        ]
        .map(|(k, v)| (k.into(), v.into()));
        let env = moto_environment(vars, 4242);
        let names: Vec<String> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["PATH", "HOME", "MOTO_PORT"]);
        assert_eq!(env[2].1, "4242");
    }
}
