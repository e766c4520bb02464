//! The login itself: telling a refused password from other refusals, and
//! giving the clone's copy of the source login the source's new password
//! after the source secret rotated (the clone was copied with the old one).

use crate::error::{Error, Result};
use crate::pg::sqlstate::classify;
use crate::pg::subscription::{quiet_statement_logging, RESET_STATEMENT_LOGGING};
use crate::pg::Secret;
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// Whether the server refused the login's password (`invalid_password`,
/// 28P01), as opposed to any other refusal (no such role, no entry in
/// `pg_hba.conf`, no privilege), which another password would not fix.
pub fn password_rejected(error: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(pg) = current.downcast_ref::<tokio_postgres::Error>() {
            return pg.code() == Some(&SqlState::INVALID_PASSWORD);
        }
        cause = current.source();
    }
    false
}

/// Set the session's own role's password (a role may always change its
/// own). What travels is a SCRAM-SHA-256 verifier made here, never the
/// password, and it travels as a bind parameter of a temporary function
/// with statement logging off where the login may turn it off: a verifier
/// in a server log could be attacked offline.
pub async fn set_own_password(client: &Client, password: &Secret) -> Result<()> {
    let op = "set the login's password on the clone";
    let verifier = Secret::new(postgres_protocol::password::scram_sha_256(
        password.expose().as_bytes(),
    ));
    quiet_statement_logging(client).await?;
    client
        .batch_execute(SET_PASSWORD_FUNCTION)
        .await
        .map_err(|e| classify(op, e))?;
    let result = client
        .execute(
            "SELECT pg_temp.clonesync_set_own_password($1)",
            &[&verifier],
        )
        .await;
    let _ = client
        .batch_execute("DROP FUNCTION IF EXISTS pg_temp.clonesync_set_own_password(text)")
        .await;
    let _ = client.batch_execute(RESET_STATEMENT_LOGGING).await;
    result.map(|_| ()).map_err(|e| classify(op, e))
}

const SET_PASSWORD_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION pg_temp.clonesync_set_own_password(verifier text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    EXECUTE pg_catalog.format('ALTER ROLE CURRENT_USER PASSWORD %L', verifier);
EXCEPTION WHEN OTHERS THEN
    -- Without the CONTEXT line, which would quote the verifier.
    RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
END
$fn$"#;
