//! Local mode on a shared machine: another OS account can neither invoke a
//! handler on the local Lambda endpoint nor read or change the run's state
//! in moto. The attack of the hardening issue, replayed as `nobody`.

use clonesync_local::LocalRuntime;
use clonesync_tests::TestEnv;
use std::process::Command;

/// An HTTP POST from `user` (through `runuser`) to 127.0.0.1:`port`;
/// returns what came back: a status line, or `CLOSED` when the connection
/// was closed without an answer.
fn post_as(user: Option<&str>, port: u16, path: &str, body: &str) -> String {
    let script = r#"
import socket, sys
port, path, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except (ConnectionResetError, socket.timeout):
    pass
print(data.split(b"\r\n")[0].decode() if data else "CLOSED")
"#;
    let mut command = match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", "python3", "-c", script]);
            c
        }
        None => {
            let mut c = Command::new("python3");
            c.args(["-c", script]);
            c
        }
    };
    let output = command
        .args([&port.to_string(), path, body])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn running_as_root() -> bool {
    clonesync_local::peer::own_uid().unwrap() == 0
}

#[tokio::test(flavor = "multi_thread")]
async fn another_account_can_neither_invoke_a_handler_nor_reach_moto() {
    if !running_as_root() {
        eprintln!("needs root to act as another account; CI runs as root");
        return;
    }
    let env = TestEnv::start().await;
    let runtime = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("local runtime");
    let state = serde_json::json!({"pipeline": {"id": "attack"}}).to_string();
    let invoke = "/2015-03-31/functions/clonesync-prepare-source/invocations";

    // As another account: no answer, and no handler ran.
    let answer = post_as(Some("nobody"), runtime.lambda_port, invoke, &state);
    assert_eq!(answer, "CLOSED", "the endpoint answered another account");
    assert!(
        runtime.faults.invocations().is_empty(),
        "a handler ran for another account: {:?}",
        runtime.faults.invocations()
    );
    let answer = post_as(Some("nobody"), runtime.moto_port(), "/", "{}");
    assert_eq!(answer, "CLOSED", "moto answered another account");
    let socket_dirs: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("clonesync-moto-")
        })
        .collect();
    for dir in &socket_dirs {
        let mode = std::os::unix::fs::PermissionsExt::mode(&dir.metadata().unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "{:?} is open to others", dir.path());
    }

    // The same requests from this account are served: the checks above
    // would have seen an answer.
    let answer = post_as(None, runtime.lambda_port, invoke, &state);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let invocations = runtime.faults.invocations();
    assert_eq!(invocations.len(), 1, "{invocations:?}");
    assert_eq!(invocations[0].error_type.as_deref(), Some("Input.Invalid"));
    let answer = post_as(None, runtime.moto_port(), "/", "{}");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_stops_when_its_runtime_is_dropped() {
    let moto = clonesync_local::moto::MotoServer::start(0).expect("moto");
    let pids = |needle: &str| -> Vec<String> {
        let out = Command::new("pgrep").args(["-f", needle]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    };
    let socket = moto.socket_path();
    let needle = format!("unix://{}", socket.display());
    assert!(!pids(&needle).is_empty(), "moto is not running");
    drop(moto);
    assert!(pids(&needle).is_empty(), "moto outlived its server handle");
    assert!(!socket.exists(), "its private directory is left");
}
