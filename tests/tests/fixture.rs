//! The fixture keeps its promise: a server it started is stopped and its
//! directory removed when the test ends, also when the test panics.

use clonesync_tests::TestServer;
use std::path::{Path, PathBuf};

fn postmaster_pid(root: &Path) -> u32 {
    let text = std::fs::read_to_string(root.join("server/data/postmaster.pid")).unwrap();
    text.lines().next().unwrap().trim().parse().unwrap()
}

/// The directory is removed and the postmaster has exited (it may linger
/// a moment as a zombie until its parent, init here, reaps it).
fn gone(root: &Path, pid: u32) -> bool {
    let exited = match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(status) => status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
    };
    !root.exists() && exited
}

#[tokio::test]
async fn a_server_is_stopped_and_removed_when_dropped() {
    let server = TestServer::start().await;
    let one: i32 = server
        .client()
        .await
        .query_one("SELECT 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    let root = server.root().to_path_buf();
    let pid = postmaster_pid(&root);
    drop(server);
    assert!(
        gone(&root, pid),
        "server {pid} or {} left behind",
        root.display()
    );
}

#[tokio::test]
async fn a_server_is_stopped_and_removed_when_the_test_panics() {
    let (tx, rx) = tokio::sync::oneshot::channel::<(PathBuf, u32)>();
    let failing = tokio::spawn(async move {
        let server = TestServer::start().await;
        let root = server.root().to_path_buf();
        tx.send((root.clone(), postmaster_pid(&root))).unwrap();
        panic!("a failing test");
    });
    assert!(failing.await.unwrap_err().is_panic());
    let (root, pid) = rx.await.unwrap();
    assert!(
        gone(&root, pid),
        "server {pid} or {} left behind",
        root.display()
    );
}

/// Servers copied from the one template cluster each take only their own
/// random password, and a write to one is not seen by the other.
#[tokio::test]
async fn servers_copied_from_the_template_keep_their_own_passwords_and_data() {
    let a = TestServer::start().await;
    let b = TestServer::start().await;
    assert_ne!(a.endpoint().password, b.endpoint().password);
    a.client()
        .await
        .batch_execute("CREATE TABLE only_on_a (id int)")
        .await
        .unwrap();
    let on_b: i64 = b
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'only_on_a'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(on_b, 0);
    // A's password does not open B.
    let crossed = clonesync::pg::Endpoint {
        password: a.endpoint().password,
        ..b.endpoint()
    };
    let refused =
        clonesync::pg::connect(&crossed, &clonesync::pg::SessionSettings::default()).await;
    let Err(err) = refused else {
        panic!("B accepted A's password");
    };
    assert!(err.to_string().contains("password"), "{err}");
}

/// What a killed test left running (a `clonesync local up` working under
/// its directory) is killed, and the directory removed, by the next
/// server the fixture starts.
#[tokio::test]
async fn what_a_killed_test_left_running_is_killed_by_the_next_start() {
    use std::os::unix::process::ExitStatusExt;
    // An owner that has exited.
    let mut owner = std::process::Command::new("true").spawn().unwrap();
    let dead = owner.id();
    owner.wait().unwrap();
    let root = std::env::temp_dir().join(format!("clonesync-test-orphan-{}", std::process::id()));
    std::fs::create_dir_all(root.join("work")).unwrap();
    let log = root.join("work").join("run.log");
    std::fs::write(&log, "").unwrap();
    // Stands for `clonesync local up --work-dir <root>/work`: a process
    // whose arguments name a path under the root.
    let mut left = std::process::Command::new("tail")
        .arg("-f")
        .arg(&log)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Only once `tail` holds the file open (a reaper that ran between
    // the fork and the exec would not know it for ours and would remove
    // the file under it).
    let opened = std::time::Instant::now();
    while !std::fs::read_dir(format!("/proc/{}/fd", left.id()))
        .unwrap()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == log))
    {
        assert!(
            opened.elapsed() < std::time::Duration::from_secs(10),
            "tail never opened {}",
            log.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Marked as a dead test's last: another test's fixture may reap it
    // from now on, which is as good as the start below.
    std::fs::write(root.join("owner.pid"), dead.to_string()).unwrap();
    let _next = TestServer::start().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = left.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            left.kill().unwrap();
            panic!("the process a killed test left is still running");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut left.stderr.take().unwrap(), &mut said).unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?} {said}");
    assert!(!root.exists(), "{} left behind", root.display());
}
