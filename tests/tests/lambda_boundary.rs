//! The real function binaries under a stand-in Runtime API: what crosses
//! the Lambda boundary is the step's output or a Diagnostic whose errorType
//! is the stable error name (what the state machine's Retry/Catch match),
//! never a Rust type name or a panic.

use clonesync_tests::runtime_api::FakeLambda;
use std::path::PathBuf;
use std::process::Command;

/// Build the function binaries (debug) into this test's target directory.
fn binaries(packages: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for package in packages {
        build.args(["-p", package]);
    }
    assert!(
        build.status().unwrap().success(),
        "cargo build of the functions failed"
    );
    profile_dir
}

const ENV: &[(&str, &str)] = &[
    ("AWS_REGION", "eu-west-1"),
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("CLONESYNC_TARGET_ACCOUNT_ID", "123456789012"),
    ("CLONESYNC_REGISTRY_TABLE", "clonesync"),
    ("CLONESYNC_DB_TLS", "disable"),
];

fn example() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../statemachine/examples/all-tables.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn outputs_and_stable_error_types_cross_the_lambda_boundary() {
    let dir = binaries(&["validate-input", "ram-events"]);

    let function = FakeLambda::start(&dir.join("validate-input"), ENV);
    let ok = function.invoke(&example());
    assert!(ok.path.ends_with("/req-1/response"), "{ok:?}");
    let state: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(state["clone_id"], "clonesync-orders-dev");
    assert_eq!(state["created"], serde_json::json!({}));

    let bad = function.invoke(&serde_json::json!({"pipeline": {"id": "Bad Id"}, "extra": true}));
    assert!(bad.path.ends_with("/req-2/error"), "{bad:?}");
    let diagnostic: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(diagnostic["errorType"], "Input.Invalid");
    let message = diagnostic["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("extra") && message.contains("source is missing"),
        "{message}"
    );
    // Still serving after an error.
    let again = function.invoke(&example());
    assert!(again.path.ends_with("/req-3/response"), "{again:?}");
    function.stop();

    let events = FakeLambda::start(&dir.join("ram-events"), ENV);
    let malformed = events.invoke(&serde_json::json!({"hello": "world"}));
    let diagnostic: serde_json::Value = serde_json::from_str(&malformed.body).unwrap();
    assert_eq!(diagnostic["errorType"], "Event.Malformed", "{malformed:?}");
    events.stop();
}

#[test]
fn a_misconfigured_function_fails_at_init_naming_every_problem() {
    let dir = binaries(&["verify"]);
    let output = Command::new(dir.join("verify"))
        .env_clear()
        .env("AWS_REGION", "eu-west-1")
        .env("CLONESYNC_DB_TLS", "maybe")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "CLONESYNC_TARGET_ACCOUNT_ID",
        "CLONESYNC_REGISTRY_TABLE",
        "CLONESYNC_DB_TLS",
    ] {
        assert!(text.contains(needle), "{needle} not named:\n{text}");
    }
}
