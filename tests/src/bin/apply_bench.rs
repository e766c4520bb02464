//! `apply-bench [--scale N] [--seconds S] [--clients C] [--large N]`: the
//! drain rate of a backlog by subscription options, on the major
//! `CLONESYNC_PG_MAJOR` names; `tools/bench-apply` runs it on every major.

use clonesync_tests::apply_bench::{option_sets, run, ApplyBenchOptions, ApplyBenchRow};

fn main() {
    let mut options = ApplyBenchOptions {
        scale: 5,
        seconds: 10,
        clients: 4,
        large_transactions: 2,
    };
    let mut header = true;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> u32 {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|v| *v > 0)
                .unwrap_or_else(|| usage(&format!("{name} needs a positive number")))
        };
        match flag.as_str() {
            "--scale" => options.scale = value("--scale"),
            "--seconds" => options.seconds = value("--seconds"),
            "--clients" => options.clients = value("--clients"),
            "--large" => options.large_transactions = value("--large"),
            "--no-header" => header = false,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let major = clonesync_local::requested_major()
        .ok()
        .flatten()
        .unwrap_or_else(|| usage("set CLONESYNC_PG_MAJOR to the major to measure"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage(&format!("cannot start the runtime: {e}")));
    if header {
        println!("{}", ApplyBenchRow::header());
    }
    for (label, sub) in option_sets(major) {
        eprintln!("PostgreSQL {major}, {label} ...");
        let row = runtime.block_on(run(&options, &label, sub));
        println!("{}", row.report());
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("apply-bench: {problem}");
    }
    eprintln!(
        "usage: CLONESYNC_PG_MAJOR=N apply-bench [--scale N (default 5)] [--seconds S (default 10)] \
         [--clients C (default 4)] [--large N (default 2)] [--no-header]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}
