//! The warm parent moto servers are forked from, when
//! `CLONESYNC_MOTO_FORKSERVER=1` asks for it (`tools/test` does): a moto
//! server spends about 4 s of CPU importing before it serves, and the
//! tests start hundreds. `forkserver.py` beside this file holds the parent
//! and its protocol.
//!
//! Each server is still a process of its own with its own state, socket
//! and `MOTO_PORT`, and it exits when its handle's connection closes (on
//! drop, and when this process dies). The parent is shared by every
//! process of this account: it listens in `$TMPDIR/clonesync-moto-<uid>`,
//! a directory only this account can enter, and exits after a minute with
//! no server and no request, so it leaves nothing behind for long.

use super::{emulator_failed, moto_environment, Supervision};
use clonesync::error::{Error, Result};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = include_str!("forkserver.py");

/// Fork a moto server on `socket` whose Lambda calls go to `lambda_port`.
pub(super) fn fork(python: &Path, socket: &Path, lambda_port: u16) -> Result<Supervision> {
    let socket = socket.to_str().ok_or_else(|| {
        emulator_failed(
            format!("moto's socket path is not UTF-8: {}", socket.display()),
            None,
        )
    })?;
    let request =
        serde_json::json!({ "socket": socket, "moto_port": lambda_port }).to_string() + "\n";
    let directory = private_directory()?;
    // A parent exiting idle at this very moment refuses the request: the
    // second attempt starts a new one.
    let mut last = None;
    for _ in 0..2 {
        let listening = running_parent(python, &directory)?;
        match ask(&listening, &request) {
            Ok((pid, lifeline)) => {
                return Ok(Supervision::Forked {
                    pid,
                    lifeline: Some(lifeline),
                })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(emulator_failed(
        "the moto forkserver did not fork a server".into(),
        last.map(|e| Box::new(e) as _),
    ))
}

/// Wait (at most 10 s) until the forked server `pid` has exited.
pub(super) fn await_exit(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Err(_) => return,
            // Exited, not yet reaped by the parent.
            Ok(status) if status.lines().any(|l| l.starts_with("State:\tZ")) => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// `$TMPDIR/clonesync-moto-<uid>`, created 0700; refused unless this
/// account owns it and no one else can enter it (another account could
/// otherwise serve its own "moto" to this one's runs).
fn private_directory() -> Result<PathBuf> {
    private_directory_in(&std::env::temp_dir(), crate::peer::own_uid()?)
}

fn private_directory_in(base: &Path, uid: u32) -> Result<PathBuf> {
    let directory = base.join(format!("clonesync-moto-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&directory) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::local_file("create", &directory, e)),
    }
    let meta = std::fs::symlink_metadata(&directory)
        .map_err(|e| Error::local_file("read", &directory, e))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(emulator_failed(
            format!(
                "{} must be a directory of uid {uid} that no one else can enter (mode 0700); \
                 remove it, or unset CLONESYNC_MOTO_FORKSERVER",
                directory.display()
            ),
            None,
        ));
    }
    Ok(directory)
}

/// The socket of a running parent for this script and `python`, started
/// when none is running (under a lock, so concurrent runs start one).
fn running_parent(python: &Path, directory: &Path) -> Result<PathBuf> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (SCRIPT, python).hash(&mut hasher);
    let name = format!("forkserver-{:016x}", hasher.finish());
    let listening = directory.join(format!("{name}.sock"));
    let lock_path = directory.join(format!("{name}.lock"));
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| Error::local_file("create", &lock_path, e))?;
    lock.lock()
        .map_err(|e| Error::local_file("lock", &lock_path, e))?;
    if UnixStream::connect(&listening).is_ok() {
        return Ok(listening);
    }
    match std::fs::remove_file(&listening) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::local_file("remove", &listening, e)),
    }
    let script = directory.join(format!("{name}.py"));
    std::fs::write(&script, SCRIPT).map_err(|e| Error::local_file("write", &script, e))?;
    // Through a shell that exits at once, so the parent is nobody's child
    // here (no zombie when it exits before this process), in its own
    // process group (a Ctrl-C at the terminal does not reach it).
    let status = Command::new("sh")
        .arg("-c")
        .arg("\"$@\" </dev/null >/dev/null 2>&1 &")
        .arg("sh")
        .arg(python)
        .arg(&script)
        .arg(&listening)
        .env_clear()
        .envs(moto_environment(std::env::vars_os(), 0))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| {
            emulator_failed(format!("start the moto forkserver: {e}"), Some(Box::new(e)))
        })?;
    if !status.success() {
        return Err(emulator_failed(
            format!("start the moto forkserver: {status}"),
            None,
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(&listening).is_err() {
        if Instant::now() > deadline {
            return Err(emulator_failed(
                format!(
                    "the moto forkserver did not listen on {} within 60 s",
                    listening.display()
                ),
                None,
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(listening)
}

/// Send the request; the answer is the forked server's pid.
fn ask(listening: &Path, request: &str) -> std::io::Result<(u32, UnixStream)> {
    let mut stream = UnixStream::connect(listening)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    let mut byte = [0u8];
    while answer.last() != Some(&b'\n') {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the forkserver closed without an answer",
            ));
        }
        answer.push(byte[0]);
    }
    let pid = std::str::from_utf8(&answer)
        .ok()
        .and_then(|a| a.trim().parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "the forkserver's answer")
        })?;
    stream.set_read_timeout(None)?;
    Ok((pid, stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_parents_directory_is_refused_unless_private_to_this_account() {
        let base = tempfile::tempdir().unwrap();
        let uid = crate::peer::own_uid().unwrap();
        let made = private_directory_in(base.path(), uid).unwrap();
        let mode = std::fs::metadata(&made).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Found again as it is.
        assert_eq!(private_directory_in(base.path(), uid).unwrap(), made);
        // Opened to others: refused.
        std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o770)).unwrap();
        let refused = private_directory_in(base.path(), uid).unwrap_err();
        assert_eq!(refused.name(), "Local.EmulatorFailed");
        // Another account's name for the same place (or a link to it): refused.
        std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(
            &made,
            base.path().join(format!("clonesync-moto-{}", uid + 1)),
        )
        .unwrap();
        let refused = private_directory_in(base.path(), uid + 1).unwrap_err();
        assert_eq!(refused.name(), "Local.EmulatorFailed");
    }
}
