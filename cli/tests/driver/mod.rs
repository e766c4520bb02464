//! Running the `clonesync` program from a test, and what its runs leave.
//! (A module of the test binaries, not a test target of its own.)

#![allow(dead_code)]

use clonesync::pg::Secret;
use clonesync_local::{LocalServer, PgBinaries, RunAs};
use clonesync_tests::fixture::SUPERUSER;
use std::path::PathBuf;
use std::process::{Command, Output};

/// Run the program with `args`, the password (if any) in `PGPASSWORD`
/// and nothing else of the test's environment's.
pub fn clonesync(args: &[&str], password: Option<&Secret>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clonesync"));
    command.args(args).env_remove("PGPASSWORD");
    if let Some(password) = password {
        command.env("PGPASSWORD", password.expose());
    }
    command.output().expect("run clonesync")
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Stops any server left under a directory when a test ends early.
pub struct StopServersUnder(pub PathBuf);

impl Drop for StopServersUnder {
    fn drop(&mut self) {
        let (Ok(bins), Ok(run_as)) = (PgBinaries::locate(), RunAs::detect()) else {
            return;
        };
        for dir in std::fs::read_dir(self.0.join("clones"))
            .map(|e| e.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
        {
            LocalServer::open(dir, 0, SUPERUSER, Secret::new(""), bins.clone(), run_as).stop_now();
        }
    }
}

/// A session on the clone a `local up` into `work` recorded, as `login`
/// (the clone has the source's roles).
pub async fn connect_to_clone(
    work: &std::path::Path,
    login: &clonesync::pg::Endpoint,
) -> tokio_postgres::Client {
    let text = std::fs::read_to_string(work.join("pipeline.json")).expect("pipeline.json");
    let record: serde_json::Value = serde_json::from_str(&text).expect("a JSON record");
    let port = record["record"]["clone_info"]["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .expect("the clone's port in the record");
    clonesync_tests::fixture::connect(&clonesync::pg::Endpoint {
        host: "127.0.0.1".into(),
        port,
        ..login.clone()
    })
    .await
}

/// Every file under `dir` that holds `needle`, read as bytes.
pub fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                todo.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.is_file() {
            if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}
