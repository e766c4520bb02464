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

    /// `user@host:port/dbname`, for log lines.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }
}

/// Per-session limits.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub application_name: String,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub connect_timeout: Duration,
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
        .options(format!(
            "-c statement_timeout={} -c lock_timeout={}",
            settings.statement_timeout.as_millis(),
            settings.lock_timeout.as_millis()
        ));
    if let Some(password) = &endpoint.password {
        config.password(password.expose());
    }
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| classify(&format!("connect to {}", endpoint.describe()), e))?;
    let target = endpoint.describe();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(endpoint = %target, %error, "database connection ended with an error");
        }
    });
    Ok(client)
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
