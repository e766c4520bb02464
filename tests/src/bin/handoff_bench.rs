//! `handoff-bench [--scale N] [--load-tps N]`: time to a synced replica by
//! the clone path and by the copy_data path, printed side by side.

use clonesync_tests::bench::{run, BenchOptions};

fn main() {
    let mut options = BenchOptions {
        scale: 10,
        load_tps: 50,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> u32 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a positive number")))
        };
        match flag.as_str() {
            "--scale" => options.scale = value("--scale"),
            "--load-tps" => options.load_tps = value("--load-tps"),
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if options.scale == 0 {
        usage("--scale must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage(&format!("cannot start the runtime: {e}")));
    let result = runtime.block_on(run(&options));
    println!("{}", result.report());
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("handoff-bench: {problem}");
    }
    eprintln!(
        "usage: handoff-bench [--scale N (pgbench scale, default 10)] [--load-tps N (default 50)]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}
