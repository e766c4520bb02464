//! Database sessions with verify-full TLS against a throwaway CA.

use clonesync::pg::{connect, SessionSettings, Tls, TrustedRoots};
use clonesync_tests::tls::{enable_tls, TestCa};
use clonesync_tests::TestEnv;

fn verify_full(ca: &TestCa) -> SessionSettings {
    SessionSettings {
        tls: Tls::VerifyFull(TrustedRoots::from_pem(ca.pem().as_bytes(), "test CA").unwrap()),
        ..SessionSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_chain_and_the_host_name() {
    let env = TestEnv::start().await;
    let superuser = env.source_client().await;
    let ca = TestCa::new("clonesync test CA");
    enable_tls(
        &env.source,
        &superuser,
        &env.root_path.join("tls"),
        &ca,
        &["localhost"],
    )
    .await;

    let mut endpoint = env.source_endpoint();
    endpoint.host = "localhost".into();
    let client = connect(&endpoint, &verify_full(&ca)).await.unwrap();
    let encrypted: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted);

    // Another CA's roots: the chain does not verify.
    let stranger = TestCa::new("someone else's CA");
    let err = connect(&endpoint, &verify_full(&stranger))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Database.TlsFailed", "{err}");
    assert!(!err.is_transient());

    // The right CA, but a host the certificate does not name.
    endpoint.host = "127.0.0.1".into();
    let err = connect(&endpoint, &verify_full(&ca)).await.unwrap_err();
    assert_eq!(err.name(), "Database.TlsFailed", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_server_without_tls() {
    let env = TestEnv::start().await;
    let ca = TestCa::new("clonesync test CA");
    let mut endpoint = env.source_endpoint();
    endpoint.host = "localhost".into();
    let err = connect(&endpoint, &verify_full(&ca)).await.unwrap_err();
    assert_eq!(err.name(), "Database.TlsFailed", "{err}");
}

#[test]
fn a_bundle_that_is_not_certificates_is_a_configuration_error() {
    for pem in [
        &b"not a certificate"[..],
        b"",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let err = TrustedRoots::from_pem(pem, "bundle.pem").unwrap_err();
        assert_eq!(err.name(), "Config.Invalid");
    }
}
