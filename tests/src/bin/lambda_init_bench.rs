//! Stripped size and cold init time of each Lambda binary.
//!
//! Init time is measured as Lambda sees it: from process start to the
//! runtime's first `GET /runtime/invocation/next` on a Runtime API served
//! here (environment read, clients built, CA bundle parsed). It runs the
//! binaries of this machine's architecture; Lambda adds its own sandbox
//! start, which this does not include.
//!
//! Usage: lambda-init-bench <dir with the release binaries> [runs]

use clonesync_tests::runtime_api::FakeLambda;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn functions(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One cold start: spawn, wait for the first "next" request, kill.
fn cold_start(binary: &Path, ca_file: &Path) -> Duration {
    let ca_file = ca_file.display().to_string();
    let function = FakeLambda::start(
        binary,
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "bench"),
            ("AWS_SECRET_ACCESS_KEY", "bench"),
            ("CLONESYNC_TARGET_ACCOUNT_ID", "123456789012"),
            (
                "CLONESYNC_SOURCE_ROLE_ARN",
                "arn:aws:iam::111122223333:role/clonesync-source",
            ),
            ("CLONESYNC_REGISTRY_TABLE", "clonesync"),
            ("CLONESYNC_DB_TLS", "verify-full"),
            ("CLONESYNC_DB_CA_FILE", &ca_file),
        ],
    );
    let first = function.next_request(Duration::from_secs(30));
    let elapsed = function.started.elapsed();
    assert!(
        first.path.ends_with("/runtime/invocation/next"),
        "unexpected first request: {first:?}"
    );
    elapsed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .expect("usage: lambda-init-bench <binary dir> [runs]"),
    );
    let runs: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(10);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let ca = rcgen::generate_simple_self_signed(vec!["bench".to_string()]).expect("cert");
    let ca_file =
        std::env::temp_dir().join(format!("clonesync-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.cert.pem()).expect("write CA");
    println!("| function | stripped size | cold init, median of {runs} | min | max |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for name in functions(&root) {
        let binary = [dir.join(&name).join("bootstrap"), dir.join(&name)]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no binary for {name} in {}", dir.display()));
        let size = std::fs::metadata(&binary).expect("size").len();
        let mut times: Vec<Duration> = (0..runs).map(|_| cold_start(&binary, &ca_file)).collect();
        times.sort();
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {name} | {:.1} MB | {} | {} | {} |",
            size as f64 / 1_000_000.0,
            ms(times[runs / 2]),
            ms(times[0]),
            ms(times[runs - 1])
        );
    }
    let _ = std::fs::remove_file(&ca_file);
}
