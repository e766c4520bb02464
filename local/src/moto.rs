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

use aws_config::{BehaviorVersion, Region, SdkConfig};
use clonesync::aws::AwsClients;
use clonesync::error::{Cause, Error, Result};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned requirement; `tools/requirements.txt` holds the same line
/// (a contract test checks). 5.2.1 runs only one execution per process.
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";
/// moto's default account: one account plays source and target locally.
/// The registry table a local run creates in moto.
pub const REGISTRY_TABLE: &str = "clonesync-registry";
pub const ACCOUNT: &str = "123456789012";
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

/// A moto server on a free port, killed on drop.
pub struct MotoServer {
    child: Child,
    pub port: u16,
}

impl MotoServer {
    /// Start moto with its Lambda calls going to `lambda_port`.
    pub fn start(lambda_port: u16) -> Result<MotoServer> {
        let port = crate::server::free_port()?;
        let program = moto_server();
        // Its own process group: a Ctrl-C at the terminal goes to clonesync
        // alone, which still needs moto to tear down in order.
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", lambda_port.to_string())
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                emulator_failed(
                    format!(
                        "start {}: {e} (install it with tools/install, or set CLONESYNC_MOTO_SERVER)",
                        program.display()
                    ),
                    Some(Box::new(e)),
                )
            })?;
        let moto = MotoServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(emulator_failed(
                    format!("moto_server did not listen on {port} within 30 s"),
                    None,
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(moto)
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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
