//! Subscriptions and their replication origins, on the target.

use crate::error::{Error, Result};
use crate::pg::sqlstate::{
    classify, code_of, CANT_CHANGE_RUNTIME_PARAM, INSUFFICIENT_PRIVILEGE, UNDEFINED_OBJECT,
};
use crate::pg::{quote, Lsn, PgName, Secret, SlotName, TableName};
use postgres_types::PgLsn;
use tokio_postgres::Client;

/// A subscription in the current database, the columns we use. The
/// connection string is deliberately not read: it holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub oid: u32,
    pub name: String,
    pub enabled: bool,
    pub slot_name: Option<String>,
    pub publications: Vec<String>,
}

impl SubscriptionInfo {
    /// The replication origin PostgreSQL made for this subscription.
    pub fn origin_name(&self) -> String {
        format!("pg_{}", self.oid)
    }
}

const SUB_COLUMNS: &str =
    "s.oid, s.subname::text, s.subenabled, s.subslotname::text, s.subpublications";

fn from_row(row: &tokio_postgres::Row) -> SubscriptionInfo {
    SubscriptionInfo {
        oid: row.get(0),
        name: row.get(1),
        enabled: row.get(2),
        slot_name: row.get(3),
        publications: row.get(4),
    }
}

/// Subscriptions of the current database (a subscription can only be
/// altered or dropped from the database it belongs to).
pub async fn subscriptions(client: &Client) -> Result<Vec<SubscriptionInfo>> {
    let sql = format!(
        "SELECT {SUB_COLUMNS} FROM pg_subscription s \
         JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database() ORDER BY s.subname"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| classify("list subscriptions", e))?;
    Ok(rows.iter().map(from_row).collect())
}

pub async fn subscription_info(client: &Client, name: &str) -> Result<Option<SubscriptionInfo>> {
    Ok(subscriptions(client)
        .await?
        .into_iter()
        .find(|s| s.name == name))
}

/// Remove a subscription without touching the slot it points at: disable it
/// (stops its apply worker), detach the slot (`slot_name = NONE`, so DROP
/// does not connect anywhere), drop it. For an inherited subscription the
/// slot belongs to someone else; for ours, cleanup drops it on the source.
pub async fn drop_subscription_keep_slot(client: &Client, name: &str) -> Result<bool> {
    let Some(sub) = subscription_info(client, name).await? else {
        return Ok(false);
    };
    let quoted = quote::ident(&sub.name);
    let mut ddl = String::new();
    if sub.enabled {
        ddl.push_str(&format!("ALTER SUBSCRIPTION {quoted} DISABLE; "));
    }
    if sub.slot_name.is_some() {
        ddl.push_str(&format!(
            "ALTER SUBSCRIPTION {quoted} SET (slot_name = NONE); "
        ));
    }
    ddl.push_str(&format!("DROP SUBSCRIPTION IF EXISTS {quoted}"));
    client
        .batch_execute(&ddl)
        .await
        .map_err(|e| classify("drop subscription", e))?;
    Ok(true)
}

/// How a subscription ships large transactions (`streaming`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streaming {
    /// Decoded on the source until commit, spilled to its disk past
    /// `logical_decoding_work_mem`, then sent.
    Off,
    /// Sent while in progress; the apply worker spools it to files and
    /// applies it at commit.
    On,
    /// Sent while in progress and applied at once by a parallel apply
    /// worker (PostgreSQL 16+).
    Parallel,
}

impl Streaming {
    fn as_str(self) -> &'static str {
        match self {
            Streaming::Off => "off",
            Streaming::On => "on",
            Streaming::Parallel => "parallel",
        }
    }
}

/// The options a subscription is created with besides the fixed ones
/// (`copy_data = false`, `create_slot = false`, `enabled = false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// `binary`: send values in the types' binary form.
    pub binary: bool,
    pub streaming: Streaming,
    /// `run_as_owner = false`, said explicitly where the server has it
    /// (16+): the apply worker runs each table's triggers, index
    /// expressions and constraints as that table's owner, never as the
    /// subscription's superuser owner. (15 runs them as the subscription
    /// owner: the apply neutralizes ALWAYS/REPLICA triggers there; see
    /// `ddl_apply.sql`.)
    pub as_table_owner: bool,
}

impl SubscriptionOptions {
    /// What clonesync creates on a target of this version
    /// (`server_version_num`); docs/BENCHMARKS.md has the measurement
    /// behind it.
    ///
    /// - `streaming = parallel` from 16 (the default from 18): a large
    ///   transaction is applied while it is still arriving; it drained a
    ///   backlog of large transactions fastest (about 20 % faster than
    ///   `off` on 16 and 18, level with it on 17), and the source sends it
    ///   instead of spilling it to its own disk.
    /// - `streaming = on` on 15: 45 % slower than `off` on such a backlog
    ///   (spooled on the target, applied at commit), but with `off` the
    ///   source spilled three quarters of the backlog to its disk while
    ///   decoding, and the source is the production server.
    /// - `binary = false`: it bought no drain rate beyond the run-to-run
    ///   noise on any version, and a type without binary send/receive
    ///   functions (an extension's) would fail a later table copy.
    ///
    /// Options left at their defaults on purpose: `origin = any` (a source
    /// that itself subscribes elsewhere must still have those rows
    /// replicated), `disable_on_error = false` (the worker retries and the
    /// apply error counter and alarm say so; a disabled subscription would
    /// retain WAL silently), `failover = false` on 17+ (an Aurora slot
    /// survives a failover with the shared storage; there are no physical
    /// standbys to synchronize it to), `password_required = true`.
    pub fn for_version(version_num: i32) -> SubscriptionOptions {
        SubscriptionOptions {
            binary: false,
            as_table_owner: version_num >= 160000,
            streaming: if version_num >= 160000 {
                Streaming::Parallel
            } else {
                Streaming::On
            },
        }
    }
}

/// `CREATE SUBSCRIPTION` attached to an existing slot, copying nothing and
/// starting disabled so the origin can be advanced before any change is
/// applied.
///
/// The connection string holds the source password, so it never appears in
/// statement text: a temporary function receives it (and the names) as bind
/// parameters and builds the DDL on the server with `format('%I', '%L')`.
/// Statement text is what the driver's debug log, `pg_stat_activity` and
/// the server's error log show; bind parameters of type [`Secret`] print as
/// `<redacted>` on the client. If the DDL fails, the function re-raises the
/// error without its context, which would quote the statement.
pub async fn create_subscription_disabled(
    client: &Client,
    name: &PgName,
    source_conninfo: &Secret,
    publication: &PgName,
    slot: &SlotName,
    options: SubscriptionOptions,
) -> Result<()> {
    let op = "create subscription";
    quiet_statement_logging(client).await?;
    client
        .batch_execute(CREATE_SUBSCRIPTION_FUNCTION)
        .await
        .map_err(|e| classify(op, e))?;
    let result = client
        .execute(
            "SELECT pg_temp.clonesync_create_subscription($1, $2, $3, $4, $5, $6, $7)",
            &[
                &name.as_str(),
                source_conninfo,
                &publication.as_str(),
                &slot.as_str(),
                // As text: format() prints a boolean as 't'/'f', which
                // subscription options do not accept.
                &if options.binary { "true" } else { "false" },
                &options.streaming.as_str(),
                &if options.as_table_owner {
                    ", run_as_owner = false"
                } else {
                    ""
                },
            ],
        )
        .await;
    let _ = client
        .batch_execute(
            "DROP FUNCTION IF EXISTS pg_temp.clonesync_create_subscription(text, text, text, text, text, text, text)",
        )
        .await;
    let _ = client.batch_execute(RESET_STATEMENT_LOGGING).await;
    result.map(|_| ()).map_err(|e| classify(op, e))
}

/// What makes a server log a statement with its bind parameters, and the
/// value that stops it. A target that logs every statement (a clone
/// inherits `log_statement = all` from its source) would otherwise write
/// the connection string, password and all, into its log.
const QUIET_LOGGING: &[(&str, &str)] = &[
    ("log_statement", "none"),
    ("log_min_duration_statement", "-1"),
    ("log_min_duration_sample", "-1"),
    ("log_transaction_sample_rate", "0"),
    ("log_parameter_max_length", "0"),
    ("log_parameter_max_length_on_error", "0"),
];

pub(crate) const RESET_STATEMENT_LOGGING: &str =
    "RESET log_statement; RESET log_min_duration_statement; \
     RESET log_min_duration_sample; RESET log_transaction_sample_rate; \
     RESET log_parameter_max_length; RESET log_parameter_max_length_on_error";

/// Turn statement logging off for this session where the login may (these
/// are superuser settings): a setting the server lacks or the login may
/// not change is left as it is, and the README says what that means.
pub(crate) async fn quiet_statement_logging(client: &Client) -> Result<()> {
    for (name, value) in QUIET_LOGGING {
        // Names and values are the constants above, never user input.
        match client
            .batch_execute(&format!("SET {name} = {}", quote::literal(value)))
            .await
        {
            Ok(()) => {}
            Err(e)
                if matches!(
                    code_of(&e),
                    Some(INSUFFICIENT_PRIVILEGE | UNDEFINED_OBJECT | CANT_CHANGE_RUNTIME_PARAM)
                ) => {}
            Err(e) => return Err(classify("quiet statement logging", e)),
        }
    }
    Ok(())
}

const CREATE_SUBSCRIPTION_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION pg_temp.clonesync_create_subscription(
    sub_name text, conninfo text, pub_name text, slot text,
    binary_transfer text, streaming text, owner_option text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    -- owner_option is one of two constants of the caller's, never input.
    EXECUTE pg_catalog.format(
        'CREATE SUBSCRIPTION %I CONNECTION %L PUBLICATION %I '
        'WITH (copy_data = false, create_slot = false, enabled = false, slot_name = %L, '
        'binary = %L, streaming = %L%s)',
        sub_name, conninfo, pub_name, slot, binary_transfer, streaming, owner_option);
EXCEPTION WHEN OTHERS THEN
    -- Re-raise without the CONTEXT line, which would quote the statement
    -- and with it the password.
    RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
END
$fn$"#;

/// What the comment on a subscription says before the version of the
/// source login its connection string holds.
const LOGIN_VERSION_MARK: &str = "clonesync: source login version ";

/// The version of the source secret the subscription's connection string
/// was made from, as [`set_connection`] marked it; `None` when unmarked.
///
/// Read from the subscription's comment, because the connection string
/// itself (`pg_subscription.subconninfo`) is readable only by a true
/// superuser, which an Aurora login never is; a version id is no secret.
pub async fn connection_version(client: &Client, name: &PgName) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT pg_catalog.obj_description(s.oid, 'pg_subscription') \
             FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d ON d.oid = s.subdbid \
             WHERE d.datname = pg_catalog.current_database() AND s.subname = $1",
            &[&name.as_str()],
        )
        .await
        .map_err(|e| classify("read subscription comment", e))?;
    let comment: Option<String> = match row {
        Some(row) => row.get(0),
        None => {
            return Err(Error::SubscriptionMissing {
                subscription: name.to_string(),
            })
        }
    };
    Ok(comment.and_then(|c| c.strip_prefix(LOGIN_VERSION_MARK).map(str::to_string)))
}

/// Give the subscription a new connection string and mark it with the
/// source secret's version it came from, in one transaction. The apply
/// worker reconnects with it; a string equal to the old one does not
/// restart the worker.
///
/// As at creation, the string holds the password: it travels as a bind
/// parameter of a temporary function, statement logging is off where the
/// login may turn it off, and an error is raised without the statement.
pub async fn set_connection(
    client: &Client,
    name: &PgName,
    source_conninfo: &Secret,
    version: &str,
) -> Result<()> {
    let op = "set the subscription's connection";
    quiet_statement_logging(client).await?;
    client
        .batch_execute(SET_CONNECTION_FUNCTION)
        .await
        .map_err(|e| classify(op, e))?;
    let mark = format!("{LOGIN_VERSION_MARK}{version}");
    let result = client
        .execute(
            "SELECT pg_temp.clonesync_set_connection($1, $2, $3)",
            &[&name.as_str(), source_conninfo, &mark],
        )
        .await;
    let _ = client
        .batch_execute("DROP FUNCTION IF EXISTS pg_temp.clonesync_set_connection(text, text, text)")
        .await;
    let _ = client.batch_execute(RESET_STATEMENT_LOGGING).await;
    result.map(|_| ()).map_err(|e| classify(op, e))
}

const SET_CONNECTION_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION pg_temp.clonesync_set_connection(
    sub_name text, conninfo text, mark text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    EXECUTE pg_catalog.format('ALTER SUBSCRIPTION %I CONNECTION %L', sub_name, conninfo);
    EXECUTE pg_catalog.format('COMMENT ON SUBSCRIPTION %I IS %L', sub_name, mark);
EXCEPTION WHEN OTHERS THEN
    -- Without the CONTEXT line, which would quote the statement and with
    -- it the password.
    RAISE EXCEPTION USING ERRCODE = SQLSTATE, MESSAGE = SQLERRM;
END
$fn$"#;

/// The origin's remote LSN: how far the subscription has applied.
pub async fn origin_progress(client: &Client, origin: &str) -> Result<Option<Lsn>> {
    let row = client
        .query_one(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1) \
                    THEN pg_replication_origin_progress($1, false) END",
            &[&origin],
        )
        .await
        .map_err(|e| classify("read replication origin", e))?;
    Ok(row.get::<_, Option<PgLsn>>(0).map(Lsn::from))
}

pub async fn advance_origin(client: &Client, origin: &str, lsn: Lsn) -> Result<()> {
    client
        .execute(
            "SELECT pg_replication_origin_advance($1, $2)",
            &[&origin, &PgLsn::from(lsn)],
        )
        .await
        .map_err(|e| classify("advance replication origin", e))?;
    Ok(())
}

/// Stop the subscription's apply worker; the slot on the source is kept
/// (and keeps the WAL the copy has not confirmed).
pub async fn disable(client: &Client, name: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "ALTER SUBSCRIPTION {} DISABLE",
            quote::ident(name)
        ))
        .await
        .map_err(|e| classify("disable subscription", e))
}

pub async fn enable(client: &Client, name: &str) -> Result<()> {
    client
        .batch_execute(&format!("ALTER SUBSCRIPTION {} ENABLE", quote::ident(name)))
        .await
        .map_err(|e| classify("enable subscription", e))
}

/// Apply errors counted by `pg_stat_subscription_stats` (PostgreSQL 15+),
/// from the same reading as the lag ([`crate::pg::lag`]).
pub async fn apply_error_count(client: &Client, name: &str) -> Result<i64> {
    crate::pg::lag::subscription_lags(client, &[name])
        .await?
        .into_iter()
        .next()
        .map(|s| s.apply_error_count.unwrap_or(0))
        .ok_or_else(|| Error::SubscriptionMissing {
            subscription: name.to_string(),
        })
}

/// The tables a publication publishes now (`pg_publication_tables`: a
/// schema or `FOR ALL TABLES` publication's new tables included).
pub async fn published_tables(source: &Client, publication: &PgName) -> Result<Vec<TableName>> {
    let rows = source
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables \
             WHERE pubname = $1 ORDER BY 1, 2",
            &[&publication.as_str()],
        )
        .await
        .map_err(|e| classify("read published tables", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| TableName::new(r.get(0), r.get(1)).ok())
        .collect())
}

/// The tables the subscription knows (`pg_subscription_rel`), with
/// whether each is still being copied (`i`nit, `d`ata copy, `f`inished
/// copy, `s`ync done: not yet `r`eady).
pub async fn subscribed_tables(
    target: &Client,
    subscription: &str,
) -> Result<Vec<(TableName, bool)>> {
    let rows = target
        .query(
            "SELECT n.nspname::text, c.relname::text, sr.srsubstate <> 'r' \
             FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid \
             JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             ORDER BY 1, 2",
            &[&subscription],
        )
        .await
        .map_err(|e| classify("read subscribed tables", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            TableName::new(r.get(0), r.get(1))
                .ok()
                .map(|t| (t, r.get::<_, bool>(2)))
        })
        .collect())
}

/// Which of `tables` exist on this server.
pub async fn existing_tables(client: &Client, tables: &[TableName]) -> Result<Vec<TableName>> {
    let mut found = Vec::new();
    for table in tables {
        let exists: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p'))",
                &[&table.schema.as_str(), &table.name.as_str()],
            )
            .await
            .map_err(|e| classify("look for a table", e))?
            .get(0);
        if exists {
            found.push(table.clone());
        }
    }
    Ok(found)
}

/// Empty `table` if it holds rows (`TRUNCATE`, refused when another
/// table's foreign key points at it). Returns whether it held rows.
pub async fn emptied_if_filled(target: &Client, table: &TableName) -> Result<bool> {
    let op = "empty a table joining the subscription";
    let filled: bool = target
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM {})", table.quoted()),
            &[],
        )
        .await
        .map_err(|e| classify(op, e))?
        .get(0);
    if filled {
        target
            .batch_execute(&format!("TRUNCATE {}", table.quoted()))
            .await
            .map_err(|e| classify(op, e))?;
    }
    Ok(filled)
}

/// `ALTER SUBSCRIPTION ... REFRESH PUBLICATION WITH (copy_data = true)`:
/// tables new to the publication are copied (only those), tables gone from
/// it are forgotten.
pub async fn refresh_publication(target: &Client, subscription: &PgName) -> Result<()> {
    target
        .batch_execute(&format!(
            "ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = true)",
            subscription.quoted()
        ))
        .await
        .map_err(|e| classify("refresh the subscription", e))
}
