//! `monitor-bench [RUNS]`: the lag monitor's wall time and connections for
//! 1, 10 and 50 registered pipelines against one local source server.
//!
//! Each pipeline has its own logical slot on the source; their targets are
//! the same local server (a subscription that does not exist reads as not
//! running), so the figures are the monitor's own cost: listing the
//! registry (DynamoDB in moto), one source connection and query, one
//! connection and query per target, the EMF lines.

use clonesync::monitor;
use clonesync::pipeline::CloneInfo;
use clonesync::pipeline::PipelineRecord;
use clonesync::pipeline::PipelineSpec;
use clonesync::pipeline::Scope;
use clonesync_local::LocalRuntime;
use clonesync_tests::TestEnv;
use std::time::Instant;

const SIZES: [usize; 3] = [1, 10, 50];

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("RUNS is a number"))
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(runs.max(1)));
}

async fn bench(runs: usize) {
    let env = TestEnv::start_with(&[
        ("wal_level", "logical"),
        ("max_replication_slots", "64"),
        ("max_wal_senders", "10"),
        ("max_connections", "200"),
        ("fsync", "off"),
    ])
    .await;
    let local = LocalRuntime::start(env.plane.clone(), &env.root_path.join("cloud"))
        .await
        .expect("local runtime");
    let source = env.source_client().await;
    let registry = local.registry();
    let source_login = env.source_endpoint();
    println!(
        "| pipelines | connections per run | median wall time | slowest | EMF lines | EMF bytes |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut registered = 0;
    for size in SIZES {
        while registered < size {
            let id = format!("bench_{registered}");
            let spec = PipelineSpec::with_defaults(&id, Scope::AllTables).expect("spec");
            source
                .execute(
                    "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
                    &[&spec.slot.as_str()],
                )
                .await
                .expect("slot");
            let request = local.request(
                &id,
                serde_json::json!({"kind": "all_tables"}),
                "appdb",
                Default::default(),
            );
            let state =
                clonesync::workflow::state::validate(request, clonesync_local::moto::REGION)
                    .expect("valid request");
            registry
                .put_pipeline(
                    &PipelineRecord {
                        pipeline: state.pipeline,
                        source: state.source,
                        clone: state.clone,
                        clone_info: Some(CloneInfo {
                            clone_id: state.clone_id,
                            host: source_login.host.clone(),
                            port: source_login.port,
                        }),
                        clone_id: None,
                        share: None,
                        setup_execution: None,
                        phase: clonesync::pipeline::Phase::Streaming,
                        registered_at: 0,
                        triples: vec![],
                        apply_groups: 1,
                    },
                    &clonesync::pipeline::Expected::Absent,
                )
                .await
                .expect("register");
            registered += 1;
        }
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let started = Instant::now();
            let (report, lines) = monitor::run(&*local.cloud, 0).await.expect("monitor run");
            times.push(started.elapsed());
            assert_eq!(report.pipelines.len(), size);
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            last = Some((report, lines));
        }
        times.sort();
        let (report, lines) = last.expect("at least one run");
        println!(
            "| {size} | {} | {} ms | {} ms | {} | {} |",
            report.connections,
            times[times.len() / 2].as_millis(),
            times[times.len() - 1].as_millis(),
            lines.len(),
            lines.iter().map(String::len).sum::<usize>(),
        );
    }
}
