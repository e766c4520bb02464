//! Error kinds come from real server behaviour, classified once in the
//! adapter: a lock held by someone else, a closed port, a wrong password.
//! Sessions carry their limits and name.

use clonesync::pg::{self, Secret, SessionSettings, TableName};
use clonesync::pipeline::PipelineSpec;
use clonesync::pipeline::Scope;
use clonesync::steps::prepare_source;
use clonesync_tests::pipeline::slots_and_publications;
use clonesync_tests::{create_schema, TestServer};
use std::time::Duration;

#[tokio::test]
async fn a_table_lock_held_elsewhere_is_transient_and_leaves_nothing() {
    let server = TestServer::start().await;
    let admin = server.client().await;
    create_schema(&admin).await;
    admin
        .batch_execute("BEGIN; LOCK TABLE public.accounts IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let settings = SessionSettings {
        lock_timeout: Duration::from_millis(300),
        ..SessionSettings::default()
    };
    let mut source = pg::connect(&server.endpoint(), &settings).await.unwrap();
    let spec = PipelineSpec::with_defaults(
        "locked",
        Scope::tables(vec![TableName::new("public", "accounts").unwrap()]).unwrap(),
    )
    .unwrap();
    let error = prepare_source::run(&mut source, &spec).await.unwrap_err();
    assert_eq!(error.name(), "Transient.Database", "{error}");
    assert!(error.is_transient());
    admin.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(slots_and_publications(&admin).await, (vec![], vec![]));
    // Once the lock is gone, the same call succeeds.
    prepare_source::run(&mut source, &spec).await.unwrap();
}

#[tokio::test]
async fn a_closed_port_is_transient_and_a_wrong_password_is_permission_denied() {
    let server = TestServer::start().await;
    let closed = pg::Endpoint {
        port: clonesync_local::server::free_port().unwrap(),
        ..server.endpoint()
    };
    let settings = SessionSettings {
        connect_timeout: Duration::from_secs(2),
        ..SessionSettings::default()
    };
    let error = pg::connect(&closed, &settings).await.unwrap_err();
    assert_eq!(error.name(), "Transient.Database", "{error}");

    let wrong = pg::Endpoint {
        password: Some(Secret::new("not-the-password")),
        ..server.endpoint()
    };
    let error = pg::connect(&wrong, &settings).await.unwrap_err();
    assert_eq!(error.name(), "Database.PermissionDenied", "{error}");
}

#[tokio::test]
async fn every_session_names_itself_and_carries_its_timeouts() {
    let server = TestServer::start().await;
    let settings = SessionSettings {
        application_name: "clonesync_probe".into(),
        statement_timeout: Duration::from_millis(1500),
        lock_timeout: Duration::from_millis(700),
        ..SessionSettings::default()
    };
    let client = pg::connect(&server.endpoint(), &settings).await.unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), \
                    (SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid())",
            &[],
        )
        .await
        .unwrap();
    let (statement, lock, name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (statement.as_str(), lock.as_str(), name.as_str()),
        ("1500ms", "700ms", "clonesync_probe")
    );
    // The statement timeout really cancels, and is classified as transient.
    let error = client
        .batch_execute("SELECT pg_sleep(5)")
        .await
        .unwrap_err();
    let error = pg::sqlstate::classify("sleep", error);
    assert_eq!(error.name(), "Transient.Database", "{error}");
}

#[tokio::test]
async fn a_slot_blocked_by_a_long_transaction_times_out_as_transient_and_leaves_nothing() {
    let server = TestServer::start().await;
    let admin = server.client().await;
    create_schema(&admin).await;
    // A transaction with an xid: creating a logical slot waits for it to end
    // before the slot can be consistent.
    admin
        .batch_execute("BEGIN; INSERT INTO public.events (kind) VALUES ('long transaction')")
        .await
        .unwrap();
    let settings = SessionSettings {
        statement_timeout: Duration::from_millis(800),
        ..SessionSettings::default()
    };
    let mut source = pg::connect(&server.endpoint(), &settings).await.unwrap();
    let spec = PipelineSpec::with_defaults("blocked", Scope::AllTables).unwrap();
    let error = prepare_source::run(&mut source, &spec).await.unwrap_err();
    assert_eq!(error.name(), "Transient.Database", "{error}");
    // The publication this call made was undone with the failed slot.
    let observer = server.client().await;
    assert_eq!(slots_and_publications(&observer).await, (vec![], vec![]));
    admin.batch_execute("COMMIT").await.unwrap();
    let prepared = prepare_source::run(&mut source, &spec).await.unwrap();
    assert!(prepared.slot_created);
}
