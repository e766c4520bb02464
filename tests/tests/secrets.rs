//! Passwords never reach a log line, an error, a step output or a server
//! log — checked with every log level on, the driver's statement logging
//! included (so the check can fail).

use clonesync::pg::{Endpoint, PgName, Secret};
use clonesync::pipeline::Scope;
use clonesync::pipeline::{PipelineSpec, UndoPlan};
use clonesync::steps::{cleanup, clone, create_subscription, prepare_source};
use clonesync_tests::capture::Captured;
use clonesync_tests::fixture::connect;
use clonesync_tests::pipeline::attach;
use clonesync_tests::{create_schema, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_in_logs_errors_outputs_or_server_logs() {
    let captured = Captured::install();

    let env = TestEnv::start().await;
    let canary = env.source.password.expose().to_string();
    let mut source = env.source_client().await;
    create_schema(&source).await;
    let spec = PipelineSpec::with_defaults("secrets", Scope::AllTables).unwrap();
    let mut outputs: Vec<String> = Vec::new();
    let mut keep = |value: String| outputs.push(value);

    let report = env.preflight(&spec).await.unwrap();
    keep(serde_json::to_string(&report).unwrap());
    let prepared = prepare_source::run(&mut source, &spec).await.unwrap();
    keep(serde_json::to_string(&prepared).unwrap());
    let info = clone::run(&env.plane, &spec).await.unwrap();
    keep(serde_json::to_string(&info).unwrap());
    let target = connect(&env.plane.clone_login(&info)).await;
    let conninfo = env.source_endpoint().conninfo();
    let attached = attach(
        &env.plane,
        &source,
        &target,
        &info,
        &spec,
        prepared.consistent_lsn,
        &conninfo,
    )
    .await;
    keep(serde_json::to_string(&attached).unwrap());
    keep(format!(
        "{:?} {:?} {:?}",
        env.source_endpoint(),
        conninfo,
        spec
    ));

    // A subscription whose login fails: the error must not carry the
    // password it was given.
    let wrong = "wrong-canary-7f3a9c";
    let bad_login = Endpoint {
        password: Some(Secret::new(wrong)),
        ..env.source_endpoint()
    };
    let other = PipelineSpec {
        subscription: PgName::new("secrets_bad_login").unwrap(),
        ..spec.clone()
    };
    let error = create_subscription::run(&target, &other, &bad_login.conninfo())
        .await
        .unwrap_err();
    keep(format!("{error} {error:?} {}", error.name()));
    assert!(
        error.to_string().contains("password authentication failed"),
        "{error}"
    );
    // And a connection that fails.
    let error = clonesync::pg::connect(&bad_login, &Default::default())
        .await
        .unwrap_err();
    keep(format!("{error} {error:?}"));

    let created = UndoPlan {
        publication: true,
        slot: true,
        clone: Some(info.clone_id.clone()),
        subscription: true,
        share: None,
    };
    let clone_log = env
        .plane
        .clone_server(&info.clone_id)
        .unwrap()
        .unwrap()
        .log();
    keep(
        serde_json::to_string(
            &cleanup::run(&env.plane, &source, Some(&target), &spec, &created)
                .await
                .unwrap(),
        )
        .unwrap(),
    );

    let logs = captured.text();
    assert!(
        logs.contains("executing") && logs.contains("clonesync_create_subscription"),
        "driver statement logging was not captured, so this test could not fail:\n{logs}"
    );
    for (what, text) in [
        ("client logs", &logs),
        ("clone server log", &clone_log),
        ("source server log", &env.source.log()),
    ] {
        assert!(
            !text.contains(&canary),
            "the password appears in the {what}"
        );
        assert!(
            !text.contains(wrong),
            "the wrong password appears in the {what}"
        );
    }
    for output in &outputs {
        assert!(
            !output.contains(&canary) && !output.contains(wrong),
            "a step output carries a password: {output}"
        );
    }
    // The clone's recovery settings held the password; they are gone.
    assert!(!env
        .root_path
        .join("clones")
        .join(&info.clone_id)
        .join("data/clonesync_recovery.conf")
        .exists());
}
