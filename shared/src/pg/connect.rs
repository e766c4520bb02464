//! Opening sessions.
//!
//! Every session names itself (`application_name`, so a DBA can see and
//! terminate it in `pg_stat_activity`) and carries `statement_timeout` and
//! `lock_timeout` from its first statement, passed in the startup packet: DDL
//! such as `CREATE PUBLICATION ... FOR TABLE` waits for table locks, and a
//! step must fail with `Transient.Database` rather than hang behind a long
//! transaction on production.

use crate::error::Result;
use crate::pg::quote::conninfo_value;
use crate::pg::secret::Secret;
use crate::pg::sqlstate::classify;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

/// Where a database is and who to log in as.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<Secret>,
}

impl Endpoint {
    /// A libpq connection string for this endpoint, as `CREATE SUBSCRIPTION
    /// ... CONNECTION` and `primary_conninfo` need it. It contains the
    /// password, so it is a [`Secret`] too.
    pub fn conninfo(&self) -> Secret {
        let mut text = format!(
            "host={} port={} dbname={} user={}",
            conninfo_value(&self.host),
            self.port,
            conninfo_value(&self.dbname),
            conninfo_value(&self.user)
        );
        if let Some(password) = &self.password {
            text.push_str(" password=");
            text.push_str(&conninfo_value(password.expose()));
        }
        Secret::new(text)
    }

    /// [`Endpoint::conninfo`] with an `sslmode`.
    pub fn conninfo_with_sslmode(&self, sslmode: Option<&str>) -> Secret {
        match sslmode {
            None => self.conninfo(),
            Some(mode) => Secret::new(format!(
                "{} sslmode={}",
                self.conninfo().expose(),
                conninfo_value(mode)
            )),
        }
    }

    /// `user@host:port/dbname`, for log lines.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }
}

use super::tls::{self, Tls};

/// Per-session limits, and how the connection is secured.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub application_name: String,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub connect_timeout: Duration,
    pub tls: Tls,
    pub search_path: SearchPath,
}

/// How names resolve in a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchPath {
    /// `pg_catalog, pg_temp`: every session clonesync itself opens. A name
    /// outside pg_catalog must then be schema-qualified, and no schema a
    /// user can create in is ever searched.
    #[default]
    Pinned,
    /// The login's own default: only for sessions that play the
    /// application (the demo's and the tests' workloads and fixtures),
    /// never for one that runs clonesync's SQL.
    Application,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            application_name: "clonesync".into(),
            // Creating a slot waits for every transaction running at that
            // moment to finish; a minute covers ordinary OLTP.
            statement_timeout: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            tls: Tls::Disable,
            search_path: SearchPath::Pinned,
        }
    }
}

/// Connect and spawn the connection's driver task.
pub async fn connect(endpoint: &Endpoint, settings: &SessionSettings) -> Result<Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&endpoint.host)
        .port(endpoint.port)
        .dbname(&endpoint.dbname)
        .user(&endpoint.user)
        .application_name(&settings.application_name)
        .connect_timeout(settings.connect_timeout)
        // search_path is pinned for every session clonesync opens: with the
        // login's default ("$user", public) a role with CREATE on public
        // could define `public.setval(text, ...)` or an operator that is a
        // better match than pg_catalog's for a call of ours, and we would
        // run it as superuser. pg_temp last: no temporary object either.
        .options(format!(
            "{}-c statement_timeout={} -c lock_timeout={}",
            match settings.search_path {
                SearchPath::Pinned => "-c search_path=pg_catalog,pg_temp ",
                SearchPath::Application => "",
            },
            settings.statement_timeout.as_millis(),
            settings.lock_timeout.as_millis()
        ));
    if let Some(password) = &endpoint.password {
        config.password(password.expose());
    }
    let operation = format!("connect to {}", endpoint.describe());
    let target = endpoint.describe();
    match settings.tls.client_config()? {
        None => {
            let (client, connection) = config
                .connect(NoTls)
                .await
                .map_err(|e| classify(&operation, e))?;
            drive(connection, target);
            Ok(client)
        }
        Some(rustls_config) => {
            // Every mode but prefer demands TLS; what is verified is the
            // configuration's business (chain and name for verify-full).
            config.ssl_mode(match settings.tls {
                Tls::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(rustls_config);
            let (client, connection) = config
                .connect(tls)
                .await
                .map_err(|e| tls::classify_connect(&operation, e))?;
            drive(connection, target);
            Ok(client)
        }
    }
}

/// Run the connection's I/O on its own task until the client is dropped.
fn drive<S, T>(connection: tokio_postgres::Connection<S, T>, target: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            // A server shutting down (a clone being deleted) ends its
            // sessions with admin_shutdown: expected, not a warning.
            let shutdown = error
                .as_db_error()
                .is_some_and(|e| e.code() == &tokio_postgres::error::SqlState::ADMIN_SHUTDOWN);
            if shutdown {
                tracing::debug!(endpoint = %target, "database connection ended: server shut down");
            } else {
                tracing::warn!(endpoint = %target, %error, "database connection ended with an error");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_quotes_values_and_debug_hides_password() {
        let endpoint = Endpoint {
            host: "db.example".into(),
            port: 5432,
            dbname: "my db".into(),
            user: "o'neil".into(),
            password: Some(Secret::new("canary-pw")),
        };
        assert_eq!(
            endpoint.conninfo().expose(),
            "host='db.example' port=5432 dbname='my db' user='o\\'neil' password='canary-pw'"
        );
        assert!(!format!("{endpoint:?}").contains("canary-pw"));
        assert!(!endpoint.describe().contains("canary-pw"));
    }
}
