//! `groups-bench [--scale N] [--seconds S] [--clients C] [--groups 1,2,4]`:
//! what apply groups buy, beside `pgcopydb clone --follow`, in one run on
//! the major `CLONESYNC_PG_MAJOR` names (15: Debian's pgcopydb decodes
//! with Debian's wal2json). `tools/bench-groups` installs the peer and
//! runs it. Prints Markdown tables; asserts nothing about speed.

use clonesync_tests::groups_bench::{self, DrainRow, GroupsBenchOptions, SyncedRow};

fn main() {
    let mut options = GroupsBenchOptions {
        scale: 10,
        seconds: 20,
        clients: 4,
        groups: vec![1, 2, 4],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> String {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        let number = |name: &str, text: String| -> u32 {
            text.parse()
                .ok()
                .filter(|v| *v > 0)
                .unwrap_or_else(|| usage(&format!("{name} needs a positive number")))
        };
        match flag.as_str() {
            "--scale" => options.scale = number("--scale", value("--scale")),
            "--seconds" => options.seconds = number("--seconds", value("--seconds")),
            "--clients" => options.clients = number("--clients", value("--clients")),
            "--groups" => {
                options.groups = value("--groups")
                    .split(',')
                    .map(|g| number("--groups", g.to_string()))
                    .collect()
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| usage(&format!("cannot start the runtime: {e}")));
    let work = tempfile::tempdir().unwrap_or_else(|e| usage(&format!("no temp dir: {e}")));
    println!(
        "scale {}, {} pgbench clients, {} s of writing\n",
        options.scale, options.clients, options.seconds
    );
    println!("{}", DrainRow::header());
    for groups in &options.groups {
        eprintln!("drain, {groups} group(s) ...");
        let row = runtime.block_on(groups_bench::drain(&options, *groups));
        println!("{}", row.report());
    }
    println!("\n{}", SyncedRow::header());
    let most = options.groups.iter().copied().max().unwrap_or(1);
    let mut counts = vec![1];
    if most > 1 {
        counts.push(most);
    }
    for groups in counts {
        eprintln!("clone path, {groups} group(s) ...");
        let row = runtime.block_on(groups_bench::clone_path(&options, groups));
        println!("{}", row.report());
    }
    eprintln!("pgcopydb clone --follow ...");
    let row = runtime.block_on(groups_bench::pgcopydb(&options, work.path()));
    println!("{}", row.report());
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("groups-bench: {problem}");
    }
    eprintln!(
        "usage: groups-bench [--scale N (default 10)] [--seconds S (default 20)] \
         [--clients C (default 4)] [--groups 1,2,4]"
    );
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}
