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
