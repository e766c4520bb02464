//! Following a rotation of the source secret while the pipeline streams.
//!
//! Two things hold the source login's password once setup is done, and
//! neither learns of a rotation by itself:
//!
//! - **The clone's copy of the login.** The clone copied the source's
//!   roles, so where the clone has no secret of its own clonesync logs in
//!   to it with the source's. After a rotation the new password is refused
//!   there. [`connect_clone`] then logs in with the secret's previous
//!   version (`AWSPREVIOUS`), which the clone still has, sets the role's
//!   password on the clone to the current one, and logs in again. Every
//!   step's clone session goes through it, so no step stops at a rotation.
//! - **The subscription's connection string.** Its apply worker keeps its
//!   connection, but the next reconnect (a restart, a network blip, a
//!   failover) is refused, the copy stops and the slot retains WAL on the
//!   source. [`reapply_connection`], run by the lag monitor for every
//!   subscription, gives it a connection string made from the current
//!   version when the version it was made from differs; the version is
//!   marked on the subscription's comment, since the string itself is
//!   readable only by a true superuser.
//!
//! Idempotent: with no rotation, the clone login succeeds at once and the
//! marked version equals the current one, and nothing is changed. A
//! second rotation before either ran (the previous version is then not the
//! one the clone has) leaves the login error as it was: the README's
//! runbook says how to set the password by hand.
//!
//! Leaves behind: the clone role's new password, the subscription's new
//! connection string and its comment.

use crate::error::Result;
use crate::pg::subscription;
use crate::pg::{connect, login, Endpoint, PgName, SessionSettings};
use tokio_postgres::Client;

/// A session on the clone as `login`; when its password is refused and
/// `previous` (the same login as of the secret's previous version) is
/// accepted, the clone's role is given the current password first.
/// Any other failure, or a previous login that is refused too, returns
/// the first error.
pub async fn connect_clone(
    login: &Endpoint,
    previous: Option<&Endpoint>,
    settings: &SessionSettings,
) -> Result<Client> {
    let refused = match connect(login, settings).await {
        Ok(client) => return Ok(client),
        Err(e) if login::password_rejected(&e) => e,
        Err(e) => return Err(e),
    };
    // Another user (a rotation that alternates users) is another role: its
    // password on the clone is not ours to set.
    let Some(previous) = previous.filter(|p| p.user == login.user) else {
        return Err(refused);
    };
    let Some(password) = &login.password else {
        return Err(refused);
    };
    let Ok(old) = connect(previous, settings).await else {
        return Err(refused);
    };
    login::set_own_password(&old, password).await?;
    drop(old);
    tracing::warn!(
        clone = %login.describe(),
        user = %login.user,
        "the source secret rotated: the clone's copy of the login now has the current password"
    );
    connect(login, settings).await
}

/// Give `subscription` (on the clone `client` is connected to) a
/// connection string from `source` when the secret version it was made
/// from is not `version`. True when it changed something.
pub async fn reapply_connection(
    client: &Client,
    subscription: &PgName,
    source: &Endpoint,
    sslmode: Option<&str>,
    version: &str,
) -> Result<bool> {
    let marked = subscription::connection_version(client, subscription).await?;
    if marked.as_deref() == Some(version) {
        return Ok(false);
    }
    subscription::set_connection(
        client,
        subscription,
        &source.conninfo_with_sslmode(sslmode),
        version,
    )
    .await?;
    match marked {
        Some(old) => tracing::warn!(
            subscription = %subscription,
            from = %old,
            to = version,
            "the source secret rotated: the subscription's connection now holds its current version"
        ),
        // Just made, or made before subscriptions were marked.
        None => {
            tracing::debug!(subscription = %subscription, version, "subscription marked with the source secret's version")
        }
    }
    Ok(true)
}
