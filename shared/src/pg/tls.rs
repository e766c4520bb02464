//! TLS for database sessions.
//!
//! In AWS every connection is `verify-full`: TLS is required, the server's
//! chain must lead to one of the trusted roots (the RDS CA bundle, which no
//! system or webpki store carries, so it is given as a PEM file), and the
//! certificate must name the host connected to. Locally TLS is what the
//! source URL's `sslmode` asks for, as libpq reads it: `disable`, `prefer`
//! (TLS when the server offers it, unverified), `require` (TLS, unverified),
//! `verify-ca` (the chain, not the name) and `verify-full`.

use crate::error::{Error, Result};
use crate::pg::sqlstate;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum Tls {
    Disable,
    /// TLS when the server offers it, its certificate unverified.
    Prefer,
    /// TLS always, its certificate unverified.
    Require,
    /// TLS, the chain verified against the roots, the name not.
    VerifyCa(TrustedRoots),
    VerifyFull(TrustedRoots),
}

impl Tls {
    /// The `sslmode` for the subscription's own connection (made by the
    /// target server, whose certificate store clonesync cannot fill):
    /// encrypted whenever clonesync's own sessions are.
    pub fn subscription_sslmode(&self) -> Option<&'static str> {
        match self {
            Tls::Disable => None,
            Tls::Prefer => Some("prefer"),
            Tls::Require | Tls::VerifyCa(_) | Tls::VerifyFull(_) => Some("require"),
        }
    }

    /// The rustls configuration for this mode (`None`: no TLS).
    pub(crate) fn client_config(&self) -> Result<Option<ClientConfig>> {
        match self {
            Tls::Disable => Ok(None),
            Tls::Prefer | Tls::Require => unverified_config().map(Some),
            Tls::VerifyCa(roots) => roots.chain_only_config().map(Some),
            Tls::VerifyFull(roots) => roots.client_config().map(Some),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::ConfigInvalid {
            problems: vec![format!("TLS setup: {e}")],
        })
}

/// `sslmode=require`: encrypted, any certificate accepted, as libpq does
/// without a root certificate. The handshake's signatures are still
/// checked, so the session is encrypted to whoever holds the key.
fn unverified_config() -> Result<ClientConfig> {
    Ok(builder()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(LibpqVerifier {
            provider: provider(),
            chain: None,
        }))
        .with_no_client_auth())
}

/// The two modes rustls has no verifier for: `require` (no `chain`: any
/// certificate) and `verify-ca` (the chain must lead to a root; the name
/// is not compared). Handshake signatures are verified either way.
#[derive(Debug)]
struct LibpqVerifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
}

impl rustls::client::danger::ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        let Some(chain) = &self.chain else {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Root certificates to verify database servers against.
#[derive(Clone)]
pub struct TrustedRoots {
    store: Arc<RootCertStore>,
    source: String,
}

impl fmt::Debug for TrustedRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TrustedRoots({} roots from {})",
            self.store.len(),
            self.source
        )
    }
}

impl TrustedRoots {
    pub fn from_pem(pem: &[u8], source: &str) -> Result<Self> {
        let bad = |why: String| Error::ConfigInvalid {
            problems: vec![format!("CA bundle {source}: {why}")],
        };
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| bad(format!("not PEM certificates ({e})")))?;
            store
                .add(cert)
                .map_err(|e| bad(format!("a certificate is unusable ({e})")))?;
        }
        if store.is_empty() {
            return Err(bad("holds no certificate".into()));
        }
        Ok(TrustedRoots {
            store: Arc::new(store),
            source: source.to_string(),
        })
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let pem = std::fs::read(path).map_err(|e| Error::ConfigInvalid {
            problems: vec![format!(
                "CA bundle {}: cannot read it ({e})",
                path.display()
            )],
        })?;
        Self::from_pem(&pem, &path.display().to_string())
    }

    pub(crate) fn client_config(&self) -> Result<ClientConfig> {
        Ok(builder()?
            .with_root_certificates(self.store.clone())
            .with_no_client_auth())
    }

    fn chain_only_config(&self) -> Result<ClientConfig> {
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            self.store.clone(),
            provider(),
        )
        .build()
        .map_err(|e| Error::ConfigInvalid {
            problems: vec![format!("TLS setup: {e}")],
        })?;
        Ok(builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LibpqVerifier {
                provider: provider(),
                chain: Some(verifier),
            }))
            .with_no_client_auth())
    }
}

/// A failed TLS connect is `Database.TlsFailed` (a certificate or
/// configuration problem that retrying will not fix); anything else is
/// classified as usual.
pub(crate) fn classify_connect(operation: &str, error: tokio_postgres::Error) -> Error {
    let mut tls_cause = None;
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(cause) = source {
        if let Some(rustls_error) = cause.downcast_ref::<rustls::Error>() {
            tls_cause = Some(rustls_error.to_string());
        }
        source = cause.source();
    }
    let text = error.to_string();
    match tls_cause {
        Some(message) => Error::TlsFailed {
            operation: operation.to_string(),
            message,
            cause: Some(Box::new(error)),
        },
        None if text.contains("TLS") => Error::TlsFailed {
            operation: operation.to_string(),
            message: text,
            cause: Some(Box::new(error)),
        },
        None => sqlstate::classify(operation, error),
    }
}
