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

/// The source URL's `sslmode`, as libpq reads it: `require` gives an
/// encrypted session or, against a server without TLS, a named error;
/// `verify-ca` checks the chain but not the name; `verify-full` both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_urls_sslmode_gives_tls_or_a_named_error() {
    use clonesync::pg::ConnectionUrl;
    let env = TestEnv::start().await;
    let endpoint = env.source_endpoint();
    let password = clonesync::pg::conninfo::encode(endpoint.password.as_ref().unwrap().expose());
    let url = |host: &str, query: &str| {
        format!(
            "postgresql://{}:{password}@{host}:{}/{}?{query}",
            endpoint.user, endpoint.port, endpoint.dbname
        )
    };
    let session = |url: &ConnectionUrl| SessionSettings {
        tls: url.tls.clone(),
        ..SessionSettings::default()
    };
    let attempt = |text: String| async move {
        let parsed = ConnectionUrl::parse(&text).unwrap();
        connect(&parsed.endpoint, &session(&parsed)).await
    };
    // No TLS on the server yet: require is refused by name, not downgraded.
    let err = attempt(url("127.0.0.1", "sslmode=require"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Database.TlsFailed", "{err}");
    assert!(attempt(url("127.0.0.1", "sslmode=prefer")).await.is_ok());

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
    let ca_file = env.root_path.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let encrypted = |client: tokio_postgres::Client| async move {
        client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
    };
    for query in ["sslmode=require", "sslmode=prefer"] {
        let client = attempt(url("127.0.0.1", query)).await.unwrap();
        assert!(encrypted(client).await, "{query}");
    }
    let root = format!("sslrootcert={}", ca_file.display());
    // The certificate names localhost, not 127.0.0.1.
    let client = attempt(url("127.0.0.1", &format!("sslmode=verify-ca&{root}")))
        .await
        .unwrap();
    assert!(encrypted(client).await);
    let err = attempt(url("127.0.0.1", &format!("sslmode=verify-full&{root}")))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Database.TlsFailed", "{err}");
    let client = attempt(url("localhost", &format!("sslmode=verify-full&{root}")))
        .await
        .unwrap();
    assert!(encrypted(client).await);
    let disabled = attempt(url("127.0.0.1", "sslmode=disable")).await.unwrap();
    assert!(!encrypted(disabled).await);
}
