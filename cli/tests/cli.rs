//! The `clonesync` program as a user runs it: the demo end to end, a local
//! pipeline against a server already running, preflight, and usage errors.
//! Each checks the exit status, what is printed, and what is left behind.

use crate::driver::{clonesync, connect_to_clone, files_holding, text, StopServersUnder};
use clonesync::pg::Secret;
use clonesync_tests::fixture::{servers_under, url_without_password, SUPERUSER};
use clonesync_tests::pipeline::slots_and_publications;
use clonesync_tests::{create_schema, TestServer};
use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_demo_runs_for_30_seconds_compares_equal_and_leaves_nothing() {
    let root = tempfile::Builder::new()
        .prefix("clonesync-cli-demo-")
        .tempdir()
        .unwrap();
    let work = root.path().join("work");
    let _guard = StopServersUnder(work.clone());
    let output = clonesync(
        &[
            "demo",
            "--duration",
            "30",
            "--work-dir",
            work.to_str().unwrap(),
        ],
        None,
    );
    let printed = text(&output);
    assert!(output.status.success(), "{printed}");
    for expected in [
        "ok Streaming",
        "execution SUCCEEDED",
        "clone available -> subscription streaming",
        "lag          0 B",
        "slot dropped true",
        "clone deleted true",
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?}:\n{printed}"
        );
    }
    let compared: Vec<&str> = printed
        .lines()
        .filter(|l| l.trim_end().ends_with("equal") || l.contains("DIFFERS"))
        .collect();
    assert_eq!(compared.len(), 8, "every table compared:\n{printed}");
    assert!(compared.iter().all(|l| l.ends_with("equal")), "{printed}");
    // The streaming phase printed a reading each second.
    let readings = printed
        .lines()
        .filter(|l| l.contains("writes committed"))
        .count();
    assert!(readings >= 25, "{readings} readings:\n{printed}");
    assert!(!work.exists(), "the work directory is removed");
    assert_eq!(servers_under(&work), 0);
    assert!(!printed.contains("password"), "{printed}");
}

#[test]
fn ctrl_c_ends_the_demo_with_comparison_and_teardown() {
    use std::io::{BufRead, BufReader};
    let root = tempfile::Builder::new()
        .prefix("clonesync-cli-ctrl-c-")
        .tempdir()
        .unwrap();
    let work = root.path().join("work");
    let _guard = StopServersUnder(work.clone());
    // In its own process group, signalled as a whole, as a terminal's
    // Ctrl-C does: every child left in the group gets SIGINT too.
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_clonesync"))
        .args(["demo", "--work-dir", work.to_str().unwrap()])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    // Two readings into the replication phase, then Ctrl-C (SIGINT).
    let mut readings = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("writes committed") {
            readings += 1;
            if readings == 2 {
                break;
            }
        }
    }
    assert_eq!(readings, 2, "{printed}");
    let kill = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    for line in lines {
        printed.push_str(&line.unwrap());
        printed.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{printed}");
    for expected in [
        "Ctrl-C: finishing the current step",
        "lag          0 B",
        "slot dropped true",
        "clone deleted true",
        "demo finished",
    ] {
        assert!(
            printed.contains(expected),
            "missing {expected:?}:\n{printed}"
        );
    }
    assert!(!printed.contains("DIFFERS"), "{printed}");
    assert!(!work.exists());
    assert_eq!(servers_under(&work), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_status_down_against_a_running_server() {
    let server = TestServer::start().await;
    create_schema(&server.client().await).await;
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().unwrap();
    let url = url_without_password(&endpoint);
    let work = server.root().join("work");
    let _guard = StopServersUnder(work.clone());
    let work_arg = work.to_str().unwrap();

    let up = clonesync(
        &[
            "local",
            "up",
            "--source-url",
            &url,
            "--pipeline",
            "cli_local",
            "--work-dir",
            work_arg,
        ],
        Some(&password),
    );
    let printed = text(&up);
    assert!(up.status.success(), "{printed}");
    assert!(
        printed.contains("streaming: clone clonesync-cli-local"),
        "{printed}"
    );
    let record = std::fs::read_to_string(work.join("pipeline.json")).unwrap();
    assert!(
        !record.contains(password.expose()),
        "pipeline.json holds no password"
    );
    assert!(!printed.contains(password.expose()));
    assert_eq!(servers_under(&work), 1, "the clone keeps running");

    // A change on the source reaches the clone.
    let source = server.client().await;
    source
        .execute(
            "UPDATE public.sync_marker SET token = 'after up' WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    let status = clonesync(
        &["local", "status", "--work-dir", work_arg],
        Some(&password),
    );
    let printed = text(&status);
    assert!(status.status.success(), "{printed}");
    // The lag monitor's figures: the pipeline's slot, the subscription.
    assert!(printed.contains("slot clonesync_cli_local"), "{printed}");
    assert!(printed.contains("pipeline cli_local   active"), "{printed}");
    assert!(printed.contains("apply worker running"), "{printed}");
    // One on the source server, one on the clone's database and one on
    // the source's (the sequences' headroom).
    assert!(printed.contains("read with 3 connections"), "{printed}");
    assert!(
        printed.contains("sequences: smallest headroom"),
        "{printed}"
    );
    assert!(!printed.contains(password.expose()));

    // Schema changes: a new table is refreshed into the subscription by
    // `status`; a change that cannot be applied is listed as pending and
    // fails `refresh` until the operator marks it (the runbook's way).
    source
        .batch_execute(
            "CREATE TABLE public.cli_new (id int PRIMARY KEY); INSERT INTO public.cli_new VALUES (1); \
             DO $$ BEGIN EXECUTE 'COMMENT ON TABLE public.cli_new IS ''new'''; END $$",
        )
        .await
        .unwrap();
    // Every status output, for the one that did the refresh.
    let mut all = String::new();
    let mut shown = String::new();
    for _ in 0..60 {
        shown = text(&clonesync(
            &["local", "status", "--work-dir", work_arg],
            Some(&password),
        ));
        all.push_str(&shown);
        if shown.contains("PENDING #") && all.contains("added \"public\".\"cli_new\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        shown.contains("1 pending") && shown.contains("COMMENT"),
        "{shown}"
    );
    assert!(all.contains("added \"public\".\"cli_new\""), "{all}");
    let refresh = clonesync(
        &["local", "refresh", "--work-dir", work_arg],
        Some(&password),
    );
    assert_eq!(
        refresh.status.code(),
        Some(1),
        "pending: {}",
        text(&refresh)
    );
    let clone = connect_to_clone(&work, &endpoint).await;
    clone
        .batch_execute(
            "UPDATE clonesync.ddl_applied SET status = 'applied' WHERE status = 'pending'",
        )
        .await
        .unwrap();
    let refresh = clonesync(
        &["local", "refresh", "--work-dir", work_arg],
        Some(&password),
    );
    assert!(refresh.status.success(), "{}", text(&refresh));
    let drift = clonesync(&["drift", "--work-dir", work_arg], Some(&password));
    assert!(drift.status.success(), "{}", text(&drift));
    assert!(
        text(&drift).contains("same shape on both sides"),
        "{}",
        text(&drift)
    );
    drop(clone);

    // Verify by content: every table equal (exit 0); a key changed on the
    // clone by hand is named, and the exit code says so; an unknown table
    // is a named error. Sequences move ahead once, then stay.
    // (The new table's copy may still be finishing: unsettled until then.)
    let mut verify = clonesync(&["verify", "--work-dir", work_arg], Some(&password));
    for _ in 0..20 {
        if verify.status.success() || !text(&verify).contains("UNSETTLED") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        verify = clonesync(&["verify", "--work-dir", work_arg], Some(&password));
    }
    let printed = text(&verify);
    assert!(verify.status.success(), "{printed}");
    assert!(
        printed.contains("equal") && !printed.contains("DIFFERS"),
        "{printed}"
    );
    let clone = connect_to_clone(&work, &endpoint).await;
    clone
        .execute("UPDATE public.cli_new SET id = 2 WHERE id = 1", &[])
        .await
        .unwrap();
    let verify = clonesync(
        &[
            "verify",
            "--work-dir",
            work_arg,
            "--tables",
            "public.cli_new",
        ],
        Some(&password),
    );
    let printed = text(&verify);
    assert_eq!(verify.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("DIFFERS")
            && printed.contains("(id) = (1): MissingOnTarget")
            && printed.contains("(id) = (2): ExtraOnTarget"),
        "{printed}"
    );
    clone
        .execute("UPDATE public.cli_new SET id = 1 WHERE id = 2", &[])
        .await
        .unwrap();
    drop(clone);
    let unknown = clonesync(
        &["verify", "--work-dir", work_arg, "--tables", "public.nope"],
        Some(&password),
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown).contains("Verify.TableUnknown"),
        "{}",
        text(&unknown)
    );
    let synced = clonesync(&["sequences", "--work-dir", work_arg], Some(&password));
    assert!(synced.status.success(), "{}", text(&synced));
    assert!(
        !text(&synced).contains("sequences: 0 moved"),
        "{}",
        text(&synced)
    );
    let again = clonesync(&["sequences", "--work-dir", work_arg], Some(&password));
    assert!(
        text(&again).contains("sequences: 0 moved"),
        "{}",
        text(&again)
    );

    // An apply worker looping on an error reads as running with no lag:
    // status shows the error count and the error itself.
    let clone = connect_to_clone(&work, &endpoint).await;
    clone
        .execute(
            "INSERT INTO public.sync_marker VALUES (99, 'on the clone')",
            &[],
        )
        .await
        .unwrap();
    source
        .execute(
            "INSERT INTO public.sync_marker VALUES (99, 'from the source')",
            &[],
        )
        .await
        .unwrap();
    let mut shown = String::new();
    for _ in 0..60 {
        shown = text(&clonesync(
            &["local", "status", "--work-dir", work_arg],
            Some(&password),
        ));
        if shown.contains("last apply error") && !shown.contains("apply errors 0") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        shown.contains("last apply error") && shown.contains("duplicate key"),
        "{shown}"
    );
    assert!(
        !shown.contains("apply errors 0") && !shown.contains("apply errors -"),
        "{shown}"
    );
    clone
        .execute("DELETE FROM public.sync_marker WHERE id = 99", &[])
        .await
        .unwrap();
    drop(clone);

    // Pause: status says so, the subscription is disabled, the slot stays.
    let paused = clonesync(&["local", "pause", "--work-dir", work_arg], Some(&password));
    assert!(paused.status.success(), "{}", text(&paused));
    let shown = text(&clonesync(
        &["local", "status", "--work-dir", work_arg],
        Some(&password),
    ));
    assert!(
        shown.contains("PAUSED") && shown.contains("DISABLED"),
        "{shown}"
    );
    assert!(shown.contains("slot clonesync_cli_local"), "{shown}");
    source
        .execute(
            "UPDATE public.sync_marker SET token = 'while paused' WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    let resumed = clonesync(
        &["local", "resume", "--work-dir", work_arg],
        Some(&password),
    );
    assert!(resumed.status.success(), "{}", text(&resumed));
    let clone = connect_to_clone(&work, &endpoint).await;
    let mut token = String::new();
    for _ in 0..120 {
        token = clone
            .query_one("SELECT token FROM public.sync_marker WHERE id = 1", &[])
            .await
            .unwrap()
            .get(0);
        if token == "while paused" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        token, "while paused",
        "the write made while paused arrives after resume"
    );
    drop(clone);
    let shown = text(&clonesync(
        &["local", "status", "--work-dir", work_arg],
        Some(&password),
    ));
    assert!(
        !shown.contains("PAUSED") && shown.contains("enabled"),
        "{shown}"
    );

    // Re-seed: a new clone, streaming again.
    let reseeded = clonesync(
        &["local", "reseed", "--work-dir", work_arg],
        Some(&password),
    );
    let printed = text(&reseeded);
    assert!(reseeded.status.success(), "{printed}");
    assert!(
        printed.contains("ReseedDeleteClone") && printed.contains("streaming again"),
        "{printed}"
    );
    assert!(!printed.contains(password.expose()));
    assert_eq!(
        servers_under(&work),
        1,
        "one clone: the old one was deleted"
    );

    // Switch over (the operator vouches that writes stopped): the copy is
    // verified, the subscription disabled, and status says so.
    let switched = clonesync(
        &[
            "local",
            "switchover",
            "--work-dir",
            work_arg,
            "--source-stopped",
        ],
        Some(&password),
    );
    let printed = text(&switched);
    assert!(switched.status.success(), "{printed}");
    assert!(
        printed.contains("SwitchoverFinish") && printed.contains("standalone database"),
        "{printed}"
    );
    let shown = text(&clonesync(
        &["local", "status", "--work-dir", work_arg],
        Some(&password),
    ));
    assert!(
        shown.contains("SWITCHED OVER") && shown.contains("DISABLED"),
        "{shown}"
    );
    // Replication resumed onto the standalone copy would apply the old
    // source's changes over the copy's own writes: refused by name.
    let resumed = clonesync(
        &["local", "resume", "--work-dir", work_arg],
        Some(&password),
    );
    assert_eq!(resumed.status.code(), Some(1), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("Pipeline.SwitchedOver"),
        "{}",
        text(&resumed)
    );
    // A re-seed makes a new copy that streams: switched over no more.
    let reseeded = clonesync(
        &["local", "reseed", "--work-dir", work_arg],
        Some(&password),
    );
    assert!(reseeded.status.success(), "{}", text(&reseeded));
    let shown = text(&clonesync(
        &["local", "status", "--work-dir", work_arg],
        Some(&password),
    ));
    assert!(
        !shown.contains("SWITCHED OVER") && shown.contains("apply worker running"),
        "{shown}"
    );

    let down = clonesync(&["local", "down", "--work-dir", work_arg], Some(&password));
    let printed = text(&down);
    assert!(down.status.success(), "{printed}");
    assert!(
        printed.contains("slot dropped true") && printed.contains("clone deleted true"),
        "{printed}"
    );
    let (slots, publications) = slots_and_publications(&source).await;
    assert!(
        slots.is_empty() && publications.is_empty(),
        "{slots:?} {publications:?}"
    );
    assert_eq!(servers_under(&work), 0);
    assert!(!work.join("pipeline.json").exists());

    // Status of a pipeline that is gone is a named failure.
    let gone = clonesync(
        &["local", "status", "--work-dir", work_arg],
        Some(&password),
    );
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        text(&gone).contains("no pipeline set up there"),
        "{}",
        text(&gone)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_reports_every_problem_readably() {
    let server =
        TestServer::start_with(&[("wal_level", "replica"), ("max_replication_slots", "0")]).await;
    let endpoint = server.endpoint();
    let url = url_without_password(&endpoint);
    let output = clonesync(
        &["preflight", "--source-url", &url],
        endpoint.password.as_ref(),
    );
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("x logical_decoding: wal_level is replica"),
        "{printed}"
    );
    assert!(printed.contains("max_replication_slots"), "{printed}");
    assert!(printed.contains("fix:"), "{printed}");

    let good = TestServer::start().await;
    let endpoint = good.endpoint();
    let url = url_without_password(&endpoint);
    let output = clonesync(
        &["preflight", "--source-url", &url],
        endpoint.password.as_ref(),
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("ok: server version"),
        "{}",
        text(&output)
    );
}

#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let output = clonesync(&["demo", "--duration", "soon"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("--duration: \"soon\" is not a valid number"));
    let output = clonesync(&["local", "up"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("--source-url is required"));
    let output = clonesync(&["--help"], None);
    assert!(output.status.success());
    assert!(text(&output).contains("clonesync demo"));
}

/// A password with every character that breaks a quoting rule somewhere
/// (conninfo, postgresql.conf, URLs), on a source that logs every
/// statement: `local up`, `status` and `down` work, and the password is in
/// no output, no log and no file left anywhere under the servers' root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_password_works_end_to_end_and_is_written_nowhere() {
    let mut settings = clonesync_tests::fixture::LOGICAL.to_vec();
    settings.push(("log_statement", "all"));
    let server = TestServer::start_with(&settings).await;
    create_schema(&server.client().await).await;
    let canary = "can'ary\\pw@h/st%25 é";
    let admin = server.client().await;
    // Not logged itself: the statement holds the password.
    admin
        .batch_execute("SET log_statement = 'none'")
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "ALTER ROLE {} PASSWORD {}",
            clonesync::pg::quote::ident(SUPERUSER),
            clonesync::pg::quote::literal(canary)
        ))
        .await
        .unwrap();
    drop(admin);
    let password = Secret::new(canary);
    let endpoint = server.endpoint();
    let url = url_without_password(&endpoint);
    let work = server.root().join("work");
    let _guard = StopServersUnder(work.clone());
    let work_arg = work.to_str().unwrap();
    let mut printed = String::new();
    let up = clonesync(
        &[
            "local",
            "up",
            "--source-url",
            &url,
            "--pipeline",
            "hostile",
            "--work-dir",
            work_arg,
        ],
        Some(&password),
    );
    printed.push_str(&text(&up));
    assert!(up.status.success(), "{printed}");
    let status = clonesync(
        &["local", "status", "--work-dir", work_arg],
        Some(&password),
    );
    printed.push_str(&text(&status));
    assert!(status.status.success(), "{printed}");
    // Escaped forms (conninfo, a log's quoting) keep this part verbatim.
    // The clone's catalog holds the subscription's connection string, as
    // PostgreSQL requires (README, Limits): its data directory is not
    // searched, its log is.
    let fragment = "pw@h/st%25 é";
    let outside_catalog = |files: Vec<PathBuf>| -> Vec<PathBuf> {
        files
            .into_iter()
            .filter(|f| {
                !f.components().any(|c| c.as_os_str() == "data")
                    || !f.to_string_lossy().contains("/clones/")
            })
            .collect()
    };
    let leaked = outside_catalog(files_holding(server.root(), fragment.as_bytes()));
    assert!(leaked.is_empty(), "the password is in {leaked:?}");
    let down = clonesync(&["local", "down", "--work-dir", work_arg], Some(&password));
    printed.push_str(&text(&down));
    assert!(down.status.success(), "{printed}");
    assert!(!printed.contains(fragment), "{printed}");
    let leaked = files_holding(server.root(), fragment.as_bytes());
    assert!(leaked.is_empty(), "the password is in {leaked:?}");
    // The source did log statements: the check reads the right logs.
    let logs = files_holding(server.root(), b"LOG:  statement:");
    assert!(!logs.is_empty(), "no statement log found under the root");
}

/// The states of the setup, in the order an execution enters them.
const STATES: &[&str] = &[
    "ValidateInput",
    "Preflight",
    "PrepareSource",
    "ShareCluster",
    "WaitForShare",
    "CreateClone",
    "WaitForClone",
    "CloneLsn",
    "CleanInherited",
    "CreateSubscription",
    "AdvanceAndEnable",
    "Verify",
    "RegisterPipeline",
];

/// `local up` started, and `signal` sent to it as soon as it reports
/// entering `state`; what it printed and how it ended.
fn up_interrupted(
    args: &[&str],
    password: &Secret,
    state: &str,
    signal: &str,
) -> (String, std::process::ExitStatus) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_clonesync"))
        .args(args)
        .env("PGPASSWORD", password.expose())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run clonesync");
    let mut printed = String::new();
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let entered = format!("-> {state}");
    for line in lines.by_ref() {
        let line = line.expect("read stdout");
        printed.push_str(&line);
        printed.push('\n');
        if line.contains(&entered) {
            break;
        }
    }
    assert!(
        printed.contains(&entered),
        "never entered {state}:\n{printed}"
    );
    if signal == "stdout" {
        // The reader goes away: every later write finds stdout closed.
        drop(lines);
    } else {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        for line in lines {
            printed.push_str(&line.unwrap_or_default());
            printed.push('\n');
        }
    }
    let output = child.wait_with_output().expect("wait for clonesync");
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    (printed, output.status)
}

/// A source of a kill case's own, with the test schema.
async fn kill_source() -> (TestServer, tokio_postgres::Client) {
    let server = TestServer::start().await;
    let source = server.client().await;
    create_schema(&source).await;
    (server, source)
}

/// `local down` of `work` succeeds and leaves nothing at all: no slot or
/// publication on the source (a server of the case's own) and no clone
/// server.
async fn down_leaves_nothing(
    work: &std::path::Path,
    password: &Secret,
    source: &tokio_postgres::Client,
    case: &str,
) {
    let work_arg = work.to_str().expect("a UTF-8 work directory");
    let down = clonesync(&["local", "down", "--work-dir", work_arg], Some(password));
    assert!(down.status.success(), "{case}: {}", text(&down));
    let (slots, publications) = slots_and_publications(source).await;
    assert!(
        slots.is_empty() && publications.is_empty(),
        "{case}: left {slots:?} {publications:?}"
    );
    assert_eq!(servers_under(work), 0, "{case}: a clone server still runs");
}

/// One case of the kill sweep: `local up` against a server of its own,
/// with writes going on, sent `signal` as it reports entering `state`.
/// `status` names what was left, a re-run converges to a streaming copy
/// (quickly: no wait runs out its timeout) whose every table equals the
/// source's once the writes stop and it has caught up, and `down` leaves
/// nothing. SIGTERM, SIGHUP and a closed stdout let the setup finish
/// instead, and never panic.
async fn killed_at(state: &str, signal: &str, seed: u64) {
    let (server, source) = kill_source().await;
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().expect("the fixture's password");
    let url = url_without_password(&endpoint);
    let tables = clonesync_tests::tables_in(&source, &["public", "Sales Schema"]).await;
    let pipeline = format!("kill_{}_{}", state.to_lowercase(), signal.to_lowercase());
    let work = server.root().join("work");
    let _guard = StopServersUnder(work.clone());
    let work_arg = work.to_str().expect("a UTF-8 work directory");
    let args = [
        "local",
        "up",
        "--source-url",
        &url,
        "--pipeline",
        &pipeline,
        "--work-dir",
        work_arg,
    ];
    // Writes go on through the interrupted run and its re-run.
    let load = clonesync_tests::Workload::start(
        endpoint.clone(),
        2,
        seed,
        std::time::Duration::from_millis(5),
    );
    let (printed, status) = up_interrupted(&args, &password, state, signal);
    let case = format!("{signal} at {state}");
    assert_ne!(status.code(), Some(101), "{case}: panicked\n{printed}");
    let slot = format!("clonesync_{pipeline}");
    let (slots, _) = slots_and_publications(&source).await;
    let listed = clonesync(
        &[
            "local",
            "status",
            "--work-dir",
            work_arg,
            "--source-url",
            &url,
        ],
        Some(&password),
    );
    let listed = text(&listed);
    if slots.contains(&slot) {
        assert!(
            listed.contains(&format!("slot {slot} ")),
            "{case}: status does not name the slot\n{listed}"
        );
    }
    if signal != "KILL" {
        assert!(
            status.success(),
            "{case}: the setup did not finish\n{printed}"
        );
    }
    // The re-run converges without waiting out a timeout.
    let started = std::time::Instant::now();
    let again = clonesync(&args, Some(&password));
    let again_text = text(&again);
    assert!(
        again.status.success(),
        "{case}: re-run failed\n{again_text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{case}: the re-run took {:?}\n{again_text}",
        started.elapsed()
    );
    let clone = connect_to_clone(&work, &endpoint).await;
    load.stop().await;
    clonesync_tests::wait_for_marker(&source, &clone, std::time::Duration::from_secs(60))
        .await
        .expect("the copy catches up with the source");
    let (states, differing) = clonesync_tests::compare_tables(&source, &clone, &tables).await;
    assert_eq!(states.len(), tables.len(), "{case}");
    assert!(differing.is_empty(), "{case}: tables differ: {differing:?}");
    drop(clone);
    down_leaves_nothing(&work, &password, &source, &case).await;
}

/// The kill sweep, a test per case so that they spread over the test
/// threads: SIGKILL as `local up` enters each state of [`STATES`], and
/// SIGTERM, SIGHUP and a closed stdout at a few.
macro_rules! kill_sweep {
    ($($name:ident => ($state:literal, $signal:literal, $seed:literal)),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                killed_at($state, $signal, $seed).await;
            }
        )*

        /// Every state of [`STATES`] has its SIGKILL case.
        #[test]
        fn the_kill_sweep_kills_at_every_state() {
            let killed: Vec<&str> = [$(($state, $signal)),*]
                .iter()
                .filter(|(_, signal)| *signal == "KILL")
                .map(|(state, _)| *state)
                .collect();
            assert_eq!(killed, STATES);
        }
    };
}

kill_sweep! {
    killed_at_validate_input => ("ValidateInput", "KILL", 0),
    killed_at_preflight => ("Preflight", "KILL", 1),
    killed_at_prepare_source => ("PrepareSource", "KILL", 2),
    killed_at_share_cluster => ("ShareCluster", "KILL", 3),
    killed_at_wait_for_share => ("WaitForShare", "KILL", 4),
    killed_at_create_clone => ("CreateClone", "KILL", 5),
    killed_at_wait_for_clone => ("WaitForClone", "KILL", 6),
    killed_at_clone_lsn => ("CloneLsn", "KILL", 7),
    killed_at_clean_inherited => ("CleanInherited", "KILL", 8),
    killed_at_create_subscription => ("CreateSubscription", "KILL", 9),
    killed_at_advance_and_enable => ("AdvanceAndEnable", "KILL", 10),
    killed_at_verify => ("Verify", "KILL", 11),
    killed_at_register_pipeline => ("RegisterPipeline", "KILL", 12),
    terminated_at_prepare_source => ("PrepareSource", "TERM", 13),
    hung_up_at_wait_for_clone => ("WaitForClone", "HUP", 14),
    terminated_at_create_subscription => ("CreateSubscription", "TERM", 15),
    stdout_closed_at_wait_for_share => ("WaitForShare", "stdout", 16),
}

/// One more kill, then `down` straight away removes what it left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_then_taken_down_at_once_leaves_nothing() {
    let (server, source) = kill_source().await;
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().expect("the fixture's password");
    let url = url_without_password(&endpoint);
    let work = server.root().join("work-down");
    let _guard = StopServersUnder(work.clone());
    let work_arg = work.to_str().unwrap();
    let args = [
        "local",
        "up",
        "--source-url",
        &url,
        "--pipeline",
        "kill_down",
        "--work-dir",
        work_arg,
    ];
    up_interrupted(&args, &password, "WaitForClone", "KILL");
    let (slots, _) = slots_and_publications(&source).await;
    assert!(
        slots.contains(&"clonesync_kill_down".to_string()),
        "{slots:?}"
    );
    down_leaves_nothing(&work, &password, &source, "kill then down").await;
}

/// `local up` checks its paths before it creates anything or touches the
/// source: a socket path over PostgreSQL's limit, a comma in the clone
/// directory, an existing directory that is not the server account's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_refuses_bad_paths_before_touching_anything() {
    use std::os::unix::fs::MetadataExt;
    let server = TestServer::start().await;
    let source = server.client().await;
    let endpoint = server.endpoint();
    let password = endpoint.password.clone().unwrap();
    let url = url_without_password(&endpoint);
    let long = server.root().join("w".repeat(120));
    let comma = server.root().join("a,b");
    let foreign = server.root().join("foreign");
    let w1 = server.root().join("w1");
    std::fs::create_dir(&foreign).unwrap();
    let foreign_owner = std::fs::metadata(&foreign).unwrap().uid();
    let running_as_root = clonesync_local::peer::own_uid().unwrap() == 0;
    let mut cases = vec![
        (vec!["--work-dir", long.to_str().unwrap()], "socket path"),
        (
            vec!["--work-dir", comma.to_str().unwrap()],
            "must not hold a comma",
        ),
    ];
    if running_as_root {
        cases.push((
            vec![
                "--work-dir",
                w1.to_str().unwrap(),
                "--clone-dir",
                foreign.to_str().unwrap(),
            ],
            "belongs to another account",
        ));
    }
    for (extra, expected) in cases {
        let mut args = vec!["local", "up", "--source-url", &url, "--pipeline", "paths"];
        args.extend(extra.iter().copied());
        let up = clonesync(&args, Some(&password));
        let printed = text(&up);
        assert_eq!(up.status.code(), Some(1), "{printed}");
        assert!(printed.contains(expected), "{expected}: {printed}");
        assert!(printed.contains("Input.Invalid"), "{printed}");
    }
    assert!(!long.exists() && !comma.exists(), "a directory was created");
    assert!(!w1.exists());
    assert_eq!(std::fs::metadata(&foreign).unwrap().uid(), foreign_owner);
    let (slots, publications) = slots_and_publications(&source).await;
    assert!(slots.is_empty() && publications.is_empty());
}
