//! TLS for database sessions.
//!
//! In AWS every connection is `verify-full`: TLS is required, the server's
//! chain must lead to one of the trusted roots (the RDS CA bundle, which no
//! system or webpki store carries, so it is given as a PEM file), and the
//! certificate must name the host connected to. Locally (loopback test
//! servers) TLS is off.

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
    VerifyFull(TrustedRoots),
}

impl Tls {
    /// The `sslmode` for the subscription's own connection (made by the
    /// target server, whose certificate store clonesync cannot fill):
    /// encrypted whenever clonesync's own sessions are.
    pub fn subscription_sslmode(&self) -> Option<&'static str> {
        match self {
            Tls::Disable => None,
            Tls::VerifyFull(_) => Some("require"),
        }
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
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Ok(ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::ConfigInvalid {
                problems: vec![format!("TLS setup: {e}")],
            })?
            .with_root_certificates(self.store.clone())
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
