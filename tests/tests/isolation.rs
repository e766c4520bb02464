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

/// Whether `pid` runs (an exited, unreaped process does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|status| !status.lines().any(|l| l.starts_with("State:\tZ")))
}

#[tokio::test(flavor = "multi_thread")]
async fn moto_stops_when_its_runtime_is_dropped() {
    use clonesync_local::moto::{Launch, MotoServer};
    let moto = MotoServer::start_with(0, Launch::Fresh).expect("moto");
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

    // Forked from the warm parent: a process of its own, serving on its
    // own socket, gone with its handle; the parent stays for the next.
    let first = MotoServer::start_with(0, Launch::Forked).expect("forked moto");
    let second = MotoServer::start_with(0, Launch::Forked).expect("forked moto");
    assert!(first.forked() && second.forked());
    let (pid, socket) = (first.supervisor_pid(), first.socket_path());
    assert_ne!(pid, second.supervisor_pid(), "two servers share a process");
    assert!(running(pid), "the forked moto is not running");
    let answer = post_as(None, first.port, "/", "{}");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(first);
    assert!(!running(pid), "the forked moto outlived its handle");
    assert!(!socket.exists(), "its private directory is left");
    let answer = post_as(None, second.port, "/", "{}");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the other server stopped too: {answer}"
    );
}

/// A forked moto's state is its own: a table made in one is not in the
/// other (each test and run sees an empty cloud, as a fresh moto would).
#[tokio::test(flavor = "multi_thread")]
async fn forked_motos_share_no_state() {
    use clonesync_local::moto::{Launch, MotoServer};
    let first = MotoServer::start_with(0, Launch::Forked).expect("forked moto");
    let second = MotoServer::start_with(0, Launch::Forked).expect("forked moto");
    let (one, two) = (first.clients().await, second.clients().await);
    clonesync_local::moto::create_registry(&one.dynamodb, "only-in-the-first")
        .await
        .expect("create a table");
    let tables = |c: &clonesync::aws::AwsClients| {
        let c = c.dynamodb.clone();
        async move {
            c.list_tables()
                .send()
                .await
                .expect("list tables")
                .table_names()
                .to_vec()
        }
    };
    assert_eq!(tables(&one).await, ["only-in-the-first"]);
    assert!(
        tables(&two).await.is_empty(),
        "the second server sees the first's table"
    );
}

/// moto and the shell it runs under see only the variables a shell and
/// Python need: read from `/proc/<pid>/environ` of both while they run;
/// likewise a forked moto and the warm parent it was forked from.
#[tokio::test(flavor = "multi_thread")]
async fn moto_runs_with_no_variable_but_what_it_needs() {
    use clonesync_local::moto::{Launch, MotoServer};
    let fresh = MotoServer::start_with(0, Launch::Fresh).expect("moto");
    let supervisor = fresh.supervisor_pid().to_string();
    let mut pids = vec![supervisor.clone()];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        if status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["PPid:", supervisor.as_str()])
        {
            pids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    assert!(pids.len() >= 2, "moto runs under its shell: {pids:?}");
    let forked = MotoServer::start_with(0, Launch::Forked).expect("forked moto");
    let pid = forked.supervisor_pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let parent = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .map(|p| p.trim().to_string())
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{parent}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("forkserver"),
        "the forked moto's parent is not the warm parent"
    );
    pids.extend([pid.to_string(), parent]);
    for pid in pids {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        for variable in environ.split(|b| *b == 0).filter(|v| !v.is_empty()) {
            let name = String::from_utf8_lossy(variable.split(|b| *b == b'=').next().unwrap());
            assert!(
                name == "MOTO_PORT"
                    || clonesync_local::moto::MOTO_ENVIRONMENT.contains(&name.as_ref())
                    // The shell sets these itself.
                    || ["PWD", "OLDPWD", "SHLVL", "_"].contains(&name.as_ref()),
                "process {pid} was given {name}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fake_server_on_the_recorded_clone_port_receives_no_login() {
    use clonesync::ports::ControlPlane;
    use std::io::{Read, Write};
    let env = TestEnv::start().await;
    let info = env.plane.create_clone("clonesync-fake").await.unwrap();
    // The clone's own server is verified and reachable.
    let endpoint = env.plane.clone_endpoint(&info).await.unwrap();
    assert_eq!(endpoint.port, info.port);
    clonesync_tests::fixture::connect(&endpoint).await;

    // Stopped, its port taken by someone else's server that asks for the
    // password in clear text.
    env.plane
        .clone_server("clonesync-fake")
        .unwrap()
        .unwrap()
        .stop()
        .await
        .unwrap();
    let fake = std::net::TcpListener::bind(("127.0.0.1", info.port)).unwrap();
    fake.set_nonblocking(true).unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let seen = received.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let server = std::thread::spawn(move || {
        let mut connections = 0;
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            match fake.accept() {
                Ok((mut stream, _)) => {
                    connections += 1;
                    stream.set_nonblocking(false).unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    // AuthenticationCleartextPassword.
                    let _ = stream.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
                    if let Ok(n) = stream.read(&mut buf) {
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        connections
    });
    // Every way the local run reaches a clone goes through this check:
    // the steps, `local status` (the monitor) and `local down` (cleanup).
    let forged = clonesync::pipeline::CloneInfo {
        clone_id: "clonesync-fake".into(),
        host: "127.0.0.1".into(),
        port: info.port,
    };
    let error = env.plane.clone_endpoint(&forged).await.unwrap_err();
    assert_eq!(error.name(), "Local.CloneUnverified", "{error}");
    let cloud =
        clonesync_local::LocalCloud::offline(env.plane.clone(), &env.root_path.join("cloud"));
    let record = clonesync::pipeline::PipelineRecord {
        pipeline: clonesync::pipeline::PipelineSpec::with_defaults(
            "fake",
            clonesync::pipeline::Scope::AllTables,
        )
        .unwrap(),
        source: clonesync::pipeline::SourceCluster {
            cluster_arn: "arn:aws:rds:eu-west-1:123456789012:cluster:local".into(),
            secret_arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x".into(),
            database: Some("postgres".into()),
            databases: None,
            host: None,
            port: None,
        },
        clone: clonesync::pipeline::CloneSettings {
            instance_class: "db.local".into(),
            db_subnet_group: None,
            security_group_ids: vec![],
            kms_key_id: None,
            secret_arn: None,
            db_cluster_parameter_group: None,
            db_parameter_group: None,
        },
        clone_info: Some(forged),
        clone_id: None,
        share: None,
        setup_execution: None,
        phase: clonesync::pipeline::Phase::Streaming,
        registered_at: 0,
        triples: vec![],
        apply_groups: 1,
    };
    let report = clonesync::monitor::check(&cloud, &[record]).await;
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.error_type == "Local.CloneUnverified"),
        "{:?}",
        report.errors
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let connections = server.join().unwrap();
    assert_eq!(connections, 0, "the fake server was contacted");
    assert!(received.lock().unwrap().is_empty());
    env.plane.delete_clone("clonesync-fake").await.unwrap();
}
