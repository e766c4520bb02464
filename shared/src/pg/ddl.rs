//! Schema changes: the capture on the source and the apply on the target
//! (`ddl_capture.sql`, `ddl_apply.sql`), and what the target recorded.
//!
//! Both sides live in the schema `clonesync` of each database. The capture
//! is shared by every pipeline of a source database: it records every DDL
//! command, and each target applies what is inside its own scope. It is
//! removed with the last pipeline of the database.

use crate::error::Result;
use crate::pg::quote;
use crate::pg::sqlstate::{classify, code_of};
use crate::pipeline::Scope;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

const QUEUE_SQL: &str = include_str!("ddl_queue.sql");
const CAPTURE_SQL: &str = include_str!("ddl_capture.sql");
const APPLY_SQL: &str = include_str!("ddl_apply.sql");

use crate::pipeline::names::CAPTURE_SCHEMA as SCHEMA;
const EVENT_TRIGGERS: [&str; 2] = ["clonesync_ddl_command_end", "clonesync_sql_drop"];
/// The copy's guard on PostgreSQL 15 (`ddl_apply.sql`).
const GUARD_TRIGGER: &str = "clonesync_replica_trigger_guard";
const APPLY_TRIGGER: &str = "clonesync_ddl_apply";

/// Run `sql` in one transaction in which nothing is captured: our own
/// objects must not become queue rows. (`session_replication_role` needs
/// the superuser or `rds_superuser` the login has anyway.)
async fn uncaptured(client: &Client, operation: &str, sql: &str) -> Result<()> {
    let batch = format!("BEGIN; SET LOCAL session_replication_role = replica;\n{sql}\n;COMMIT");
    match client.batch_execute(&batch).await {
        Ok(()) => Ok(()),
        Err(e) => {
            // The failed statement left the transaction open and aborted.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(classify(operation, e))
        }
    }
}

/// The one value a catalog question answers with; `operation` names it in
/// the error.
async fn answer<T>(
    client: &Client,
    operation: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query_one(sql, params)
        .await
        .map_err(|e| classify(operation, e))?
        .try_get(0)
        .map_err(|e| classify(operation, e))
}

/// Whether the capture's event triggers exist in this database.
pub async fn capture_installed(client: &Client) -> Result<bool> {
    answer(
        client,
        "read event triggers",
        "SELECT count(*) = 2 FROM pg_event_trigger WHERE evtname = ANY($1)",
        &[&EVENT_TRIGGERS.to_vec()],
    )
    .await
}

/// What makes the schema `clonesync` of this database not clonesync's own:
/// an owner other than the login or a superuser, a grant of CREATE to
/// another role, or an object in it owned by another role. Empty when the
/// schema is ours or absent. The capture's functions run inside every
/// role's DDL, a superuser's too: anyone who could replace one of them,
/// or add an overload beside it, could run code as that superuser.
async fn foreign_in_schema(client: &Client) -> Result<Vec<String>> {
    // (`ddl_as_<md5>`: the per-role functions an earlier version's apply
    // made and left owned by that role; the apply script drops them, and
    // only the schema's owner could have made them.)
    let rows = client
        .query(FOREIGN_IN_SCHEMA_SQL, &[&SCHEMA])
        .await
        .map_err(|e| classify("check who owns schema clonesync", e))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// [`foreign_in_schema`]'s question, one line per finding.
const FOREIGN_IN_SCHEMA_SQL: &str = "
WITH s AS (SELECT n.oid, n.nspowner, n.nspacl FROM pg_catalog.pg_namespace n WHERE n.nspname = $1),
     trusted AS (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user OR r.rolsuper)
SELECT pg_catalog.format('the schema is owned by %s', s.nspowner::pg_catalog.regrole) FROM s
 WHERE s.nspowner NOT IN (SELECT oid FROM trusted)
UNION ALL
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC may create in it'
            ELSE pg_catalog.format('%s may create in it', a.grantee::pg_catalog.regrole) END
  FROM s, pg_catalog.aclexplode(s.nspacl) a
 WHERE a.privilege_type = 'CREATE' AND a.grantee NOT IN (SELECT oid FROM trusted)
UNION ALL
SELECT pg_catalog.format('%s %s is owned by %s', o.kind, o.name, o.owner::pg_catalog.regrole) FROM (
    SELECT 'relation' AS kind, c.relname::text AS name, c.relowner AS owner
      FROM pg_catalog.pg_class c, s WHERE c.relnamespace = s.oid
    UNION ALL
    SELECT 'function', p.oid::pg_catalog.regprocedure::text, p.proowner
      FROM pg_catalog.pg_proc p, s WHERE p.pronamespace = s.oid AND p.proname !~ '^ddl_as_[0-9a-f]{32}$'
    UNION ALL
    SELECT 'type', t.typname::text, t.typowner FROM pg_catalog.pg_type t, s WHERE t.typnamespace = s.oid
    UNION ALL
    SELECT 'operator', o.oprname::text, o.oprowner FROM pg_catalog.pg_operator o, s WHERE o.oprnamespace = s.oid
    UNION ALL
    SELECT 'collation', l.collname::text, l.collowner FROM pg_catalog.pg_collation l, s WHERE l.collnamespace = s.oid
    UNION ALL
    SELECT 'conversion', v.conname::text, v.conowner FROM pg_catalog.pg_conversion v, s WHERE v.connamespace = s.oid
    UNION ALL
    SELECT 'operator class', oc.opcname::text, oc.opcowner FROM pg_catalog.pg_opclass oc, s WHERE oc.opcnamespace = s.oid
    UNION ALL
    SELECT 'operator family', f.opfname::text, f.opfowner FROM pg_catalog.pg_opfamily f, s WHERE f.opfnamespace = s.oid
    UNION ALL
    SELECT 'statistics', x.stxname::text, x.stxowner FROM pg_catalog.pg_statistic_ext x, s WHERE x.stxnamespace = s.oid
    UNION ALL
    SELECT 'text search configuration', tc.cfgname::text, tc.cfgowner FROM pg_catalog.pg_ts_config tc, s WHERE tc.cfgnamespace = s.oid
    UNION ALL
    SELECT 'text search dictionary', td.dictname::text, td.dictowner FROM pg_catalog.pg_ts_dict td, s WHERE td.dictnamespace = s.oid
) o WHERE o.owner NOT IN (SELECT oid FROM trusted)
ORDER BY 1";

/// Refuse, by name, to install into a schema `clonesync` that is not ours
/// ([`foreign_in_schema`]); nothing is made.
pub async fn ensure_schema_ours(client: &Client) -> Result<()> {
    let found = foreign_in_schema(client).await?;
    if found.is_empty() {
        return Ok(());
    }
    let database: String = answer(
        client,
        "read the database name",
        "SELECT current_database()::text",
        &[],
    )
    .await?;
    Err(crate::error::Error::SchemaNotOurs { database, found })
}

/// Install (or bring up to date) the capture. Returns whether it was not
/// there before. Two pipelines installing at once: the loser of the race
/// on the schema's catalog rows tries again and finds it.
pub async fn install_capture(client: &Client) -> Result<bool> {
    ensure_schema_ours(client).await?;
    let existed = capture_installed(client).await?;
    for attempt in 0..2 {
        let sql = format!("{QUEUE_SQL}\n{CAPTURE_SQL}");
        match uncaptured(client, "install schema change capture", &sql).await {
            Ok(()) => break,
            Err(e) if attempt == 0 && e.name() == "Database.Failed" => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(!existed)
}

/// Remove the capture and apply objects of this database (both sides use
/// this: a kept copy must not go on applying or capturing). A schema that
/// holds objects of someone else stays. Returns whether anything was
/// there.
pub async fn remove(client: &Client) -> Result<bool> {
    let present: bool = answer(
        client,
        "read schema",
        "SELECT to_regnamespace($1) IS NOT NULL",
        &[&SCHEMA],
    )
    .await?;
    if !present {
        return Ok(false);
    }
    // Every function of the schema is ours (it is named for clonesync);
    // they go before the queue table, whose row type one of them takes.
    // The tables the capture gave REPLICA IDENTITY FULL (no pipeline
    // publishes them any more) get DEFAULT back, each unless it is locked
    // (then it keeps FULL, which costs only WAL) or the user changed it.
    let sql = format!(
        "DROP EVENT TRIGGER IF EXISTS {}; DROP EVENT TRIGGER IF EXISTS {}; DROP EVENT TRIGGER IF EXISTS {}; \
         DO $do$ DECLARE f regprocedure; r record; BEGIN \
           IF to_regclass('clonesync.ddl_identity_full') IS NOT NULL THEN \
             FOR r IN SELECT n.nspname, c.relname FROM clonesync.ddl_identity_full i \
                        JOIN pg_class c ON c.oid = i.relid AND c.relreplident = 'f' \
                        JOIN pg_namespace n ON n.oid = c.relnamespace \
                       WHERE n.nspname = i.schema_name AND c.relname = i.table_name LOOP \
               BEGIN \
                 EXECUTE format('ALTER TABLE %I.%I REPLICA IDENTITY DEFAULT', r.nspname, r.relname); \
               EXCEPTION WHEN lock_not_available OR query_canceled THEN \
                 RAISE WARNING 'clonesync: %.% keeps REPLICA IDENTITY FULL (it was locked)', r.nspname, r.relname; \
               END; \
             END LOOP; \
           END IF; \
           IF to_regclass('clonesync.ddl_deferred_constraint') IS NOT NULL THEN \
             FOR r IN SELECT d.* FROM clonesync.ddl_deferred_constraint d \
                       WHERE to_regclass(quote_ident(d.schema_name) || '.' || quote_ident(d.table_name)) IS NOT NULL LOOP \
               BEGIN \
                 EXECUTE format('ALTER TABLE ONLY %I.%I ADD CONSTRAINT %I %s', r.schema_name, r.table_name, r.constraint_name, r.definition); \
               EXCEPTION WHEN duplicate_object THEN NULL; \
                 WHEN OTHERS THEN \
                 RAISE WARNING 'clonesync: %.% lacks its constraint % (%): %', r.schema_name, r.table_name, r.constraint_name, r.definition, SQLERRM; \
               END; \
             END LOOP; \
           END IF; \
           IF to_regclass('clonesync.ddl_queue') IS NOT NULL THEN \
             DROP TRIGGER IF EXISTS clonesync_ddl_apply ON clonesync.ddl_queue; \
           END IF; \
           FOR f IN SELECT p.oid::regprocedure FROM pg_proc p \
                     WHERE p.pronamespace = 'clonesync'::regnamespace LOOP \
             EXECUTE format('DROP FUNCTION %s', f); \
           END LOOP; END $do$; \
         DROP TABLE IF EXISTS clonesync.ddl_queue, clonesync.ddl_applied, clonesync.ddl_rebuilt, clonesync.ddl_split, clonesync.ddl_queue_watermark, \
           clonesync.ddl_message, clonesync.ddl_message_statement, clonesync.ddl_message_kind, clonesync.ddl_identity_full, \
           clonesync.ddl_deferred_constraint",
        EVENT_TRIGGERS[0], EVENT_TRIGGERS[1], GUARD_TRIGGER
    );
    uncaptured(client, "remove schema change capture", &sql).await?;
    // Not in the transaction above: a schema someone else also uses must
    // not undo the removal of our own objects.
    match client
        .batch_execute("DROP SCHEMA IF EXISTS clonesync")
        .await
    {
        Ok(()) => {}
        Err(e) if code_of(&e) == Some("2BP01") => {
            tracing::warn!("schema clonesync holds objects that are not clonesync's; it stays");
        }
        Err(e) => return Err(classify("drop schema clonesync", e)),
    }
    Ok(true)
}

/// [`remove`] unless a pipeline's publication (marked as one) is still in
/// this database: the capture is shared by all of them. Returns whether it
/// was removed.
pub async fn remove_if_unused(client: &Client) -> Result<bool> {
    let marked =
        crate::pg::publication::marked_publications(client, crate::pipeline::names::MARK_PREFIX)
            .await?;
    if !marked.is_empty() {
        return Ok(false);
    }
    remove(client).await
}

/// Make the target apply the queue rows of `scope` as they arrive, and
/// stop the capture it inherited from the source (local DDL on the copy
/// must not be captured). With `apply` false only the queue table is made
/// sure to exist, so a source publication that carries queue rows (`FOR
/// ALL TABLES` with another pipeline's capture) never stops apply.
pub async fn install_apply(client: &Client, scope: &Scope, apply: bool) -> Result<()> {
    ensure_schema_ours(client).await?;
    let scope_json =
        serde_json::to_string(scope).map_err(|cause| crate::error::Error::OutputUnencodable {
            what: "the pipeline's scope (for the apply)".into(),
            cause,
        })?;
    let mut sql = format!("{QUEUE_SQL}\n{APPLY_SQL}");
    for trigger in EVENT_TRIGGERS {
        // An inherited event trigger is disabled, not dropped: the
        // functions it names stay in use by nothing else.
        sql.push_str(&format!(
            "\nDO $do$ BEGIN IF EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = {lit}) THEN \
             ALTER EVENT TRIGGER {name} DISABLE; END IF; END $do$;",
            lit = quote::literal(trigger),
            name = trigger
        ));
    }
    sql.push_str(&format!(
        "\nDROP TRIGGER IF EXISTS {APPLY_TRIGGER} ON clonesync.ddl_queue;"
    ));
    if apply {
        sql.push_str(&format!(
            "\nCREATE TRIGGER {APPLY_TRIGGER} BEFORE INSERT ON clonesync.ddl_queue FOR EACH ROW \
             EXECUTE FUNCTION clonesync.ddl_apply({scope}); \
             ALTER TABLE clonesync.ddl_queue ENABLE ALWAYS TRIGGER {APPLY_TRIGGER};",
            scope = quote::literal(&scope_json)
        ));
    }
    uncaptured(client, "install schema change apply", &sql).await
}

/// On PostgreSQL 15, stop every user trigger from firing during apply
/// (`clonesync.ddl_neutralize_replica_triggers`): a clone brings the
/// source's ENABLE ALWAYS / ENABLE REPLICA triggers, and 15 would run them
/// as the subscription's superuser owner. Returns what it changed (each
/// also a pending entry); nothing on 16+.
pub async fn neutralize_replica_triggers(client: &Client) -> Result<Vec<String>> {
    answer(
        client,
        "neutralize replica triggers",
        "SELECT clonesync.ddl_neutralize_replica_triggers()",
        &[],
    )
    .await
}

/// Whether the target applies schema changes (the trigger is there and
/// fires during apply).
pub async fn apply_installed(client: &Client) -> Result<bool> {
    answer(
        client,
        "read the apply trigger",
        "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = $1 AND tgenabled = 'A' \
           AND tgrelid = to_regclass('clonesync.ddl_queue'))",
        &[&APPLY_TRIGGER],
    )
    .await
}

/// Disable the capture a clone inherited. Returns whether one was enabled
/// (so a second call reports nothing done).
pub async fn disable_inherited_capture(client: &Client) -> Result<bool> {
    let enabled: i64 = answer(
        client,
        "read event triggers",
        "SELECT count(*) FROM pg_event_trigger WHERE evtname = ANY($1) AND evtenabled <> 'D'",
        &[&EVENT_TRIGGERS.to_vec()],
    )
    .await?;
    if enabled == 0 {
        return Ok(false);
    }
    let sql = EVENT_TRIGGERS
        .iter()
        .map(|name| {
            format!(
                "DO $do$ BEGIN IF EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = {lit}) THEN \
                 ALTER EVENT TRIGGER {name} DISABLE; END IF; END $do$;",
                lit = quote::literal(name)
            )
        })
        .collect::<String>();
    uncaptured(client, "disable inherited capture", &sql).await?;
    Ok(true)
}

/// A table's definition on the source, as the capture ships it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDefinition {
    pub definition: String,
    pub owner: String,
    /// The last queue row at the moment it was read: the target skips the
    /// older commands on the table, which this definition already holds.
    pub as_of: i64,
}

/// The source's definition of one table; `None` when the capture is not
/// installed or there is no such table.
pub async fn source_table_definition(
    source: &Client,
    table: &crate::pg::TableName,
) -> Result<Option<SourceDefinition>> {
    let op = "read a table's definition";
    let installed: bool = answer(
        source,
        op,
        "SELECT to_regprocedure('clonesync.ddl_definition(oid, oid)') IS NOT NULL",
        &[],
    )
    .await?;
    if !installed {
        return Ok(None);
    }
    let row = source
        .query_opt(
            "SELECT clonesync.ddl_definition('pg_class'::regclass, c.oid)::text, c.relowner::regrole::text, \
                    (SELECT coalesce(max(id), 0) FROM clonesync.ddl_queue) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&table.schema.as_str(), &table.name.as_str()],
        )
        .await
        .map_err(|e| classify(op, e))?;
    Ok(row.map(|r| SourceDefinition {
        definition: r.get(0),
        owner: r.get(1),
        as_of: r.get(2),
    }))
}

/// Create `table` on the target from the source's definition, as its
/// owner (the apply's own rebuild). For a table whose rows reached the
/// stream before the command that made it could (`CREATE TABLE AS`): apply
/// stops on them until the table exists.
pub async fn create_table_from_definition(
    target: &Client,
    table: &crate::pg::TableName,
    source: &SourceDefinition,
) -> Result<()> {
    target
        .execute(
            // The identity written as the apply writes it (quote_ident).
            "WITH t AS (SELECT quote_ident($1) || '.' || quote_ident($2) AS identity), \
                  made AS (SELECT clonesync.ddl_reconcile_table(t.identity, $3::text::jsonb, $4) FROM t) \
             INSERT INTO clonesync.ddl_rebuilt (identity, as_of) SELECT t.identity, $5 FROM t, made \
             ON CONFLICT (identity) DO UPDATE SET as_of = excluded.as_of",
            &[
                &table.schema.as_str(),
                &table.name.as_str(),
                &source.definition,
                &source.owner,
                &source.as_of,
            ],
        )
        .await
        .map_err(|e| classify("create a table from its definition", e))?;
    Ok(())
}

/// Make on the copy a table only the stream names (see
/// [`crate::pg::stream`]): every column `text`, which takes any value the
/// stream sends as text, in its schema (made if missing), owned by the
/// applying login and marked by its comment. Apply then skips its rows
/// (the table is in no subscription) and a later replayed drop removes
/// it; one left behind shows in drift as a table the source lacks.
pub async fn create_stand_in_table(
    target: &Client,
    table: &crate::pg::TableName,
    columns: &[String],
) -> Result<()> {
    let identity = format!(
        "{}.{}",
        crate::pg::quote::ident(table.schema.as_str()),
        crate::pg::quote::ident(table.name.as_str())
    );
    let columns = columns
        .iter()
        .map(|c| format!("{} text", crate::pg::quote::ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let schema = crate::pg::quote::ident(table.schema.as_str());
    let schema_missing: bool = answer(
        target,
        "make a stand-in table",
        "SELECT to_regnamespace(quote_ident($1)) IS NULL",
        &[&table.schema.as_str()],
    )
    .await?;
    // Made in clonesync's schema and moved: a user table may sit in
    // pg_catalog (ALTER TABLE ... SET SCHEMA pg_catalog), where CREATE
    // TABLE is refused but a move is not.
    let scratch = crate::pg::quote::ident(&format!(
        "stand_in_{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let made = target
        .batch_execute(&format!(
            "BEGIN; \
             {make_schema} \
             CREATE TABLE clonesync.{scratch} ({columns}); \
             ALTER TABLE clonesync.{scratch} SET SCHEMA {schema}; \
             ALTER TABLE {schema}.{scratch} RENAME TO {name}; \
             COMMENT ON TABLE {identity} IS 'clonesync: a stand-in so apply could pass rows of a table the source made and dropped unseen'; \
             COMMIT",
            make_schema = if schema_missing {
                format!("CREATE SCHEMA {schema};")
            } else {
                String::new()
            },
            name = crate::pg::quote::ident(table.name.as_str()),
        ))
        .await
        .map_err(|e| classify("make a stand-in table", e));
    if made.is_err() {
        // The session goes on serving the refresh: out of the failed block.
        let _ = target.batch_execute("ROLLBACK").await;
    }
    made
}

/// A schema change the target could not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// The queue row's id (the source's order).
    pub id: i64,
    pub command_tag: String,
    /// Why, per object.
    pub detail: String,
    /// The start of the client string that ran it.
    pub command: String,
}

/// What the target did with the schema changes it received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedSummary {
    pub applied: i64,
    pub out_of_scope: i64,
    /// How many are pending in all.
    #[serde(default)]
    pub pending_total: i64,
    /// The oldest of them, at most [`PENDING_LISTED`]: a report (and the
    /// state machine's payload) stays small however many there are.
    pub pending: Vec<PendingChange>,
}

/// How many pending changes a summary lists.
pub const PENDING_LISTED: i64 = 50;

/// The target's record of applied schema changes; all zero where apply is
/// not installed.
pub async fn applied_summary(client: &Client) -> Result<AppliedSummary> {
    let op = "read applied schema changes";
    let present: bool = answer(
        client,
        op,
        "SELECT to_regclass('clonesync.ddl_applied') IS NOT NULL",
        &[],
    )
    .await?;
    if !present {
        return Ok(AppliedSummary::default());
    }
    let counts = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'applied'), count(*) FILTER (WHERE status = 'out_of_scope'), \
                    count(*) FILTER (WHERE status = 'pending') \
             FROM clonesync.ddl_applied",
            &[],
        )
        .await
        .map_err(|e| classify(op, e))?;
    let pending = client
        .query(
            "SELECT a.id, a.command_tag, coalesce(a.detail, ''), coalesce(a.command_text, left(q.command_text, 200), '') \
             FROM clonesync.ddl_applied a LEFT JOIN clonesync.ddl_queue q ON q.id = a.id \
             WHERE a.status = 'pending' ORDER BY a.id LIMIT $1",
            &[&PENDING_LISTED],
        )
        .await
        .map_err(|e| classify(op, e))?;
    Ok(AppliedSummary {
        applied: counts.get(0),
        out_of_scope: counts.get(1),
        pending_total: counts.get(2),
        pending: pending
            .iter()
            .map(|r| PendingChange {
                id: r.get(0),
                command_tag: r.get(1),
                detail: r.get(2),
                command: r.get(3),
            })
            .collect(),
    })
}

/// How many schema changes the target could not apply (where the apply is
/// installed: `clonesync.ddl_applied` exists).
pub async fn pending_count(client: &Client) -> Result<i64> {
    answer(
        client,
        "count pending schema changes",
        "SELECT count(*) FROM clonesync.ddl_applied WHERE status = 'pending'",
        &[],
    )
    .await
}

/// Schema changes the source has captured (committed) that the copy has
/// not received yet: in the stream, or behind a stopped apply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    pub commands: i64,
    /// Since the oldest of them was captured; `None` when there is none.
    pub oldest_seconds: Option<f64>,
}

/// The rows of the source's queue (`source`) that the copy's queue
/// (`target`) does not have; `None` where either side has no queue. A row
/// leaves the source only once every slot has confirmed it, so what the
/// source still has and the copy lacks has not arrived.
pub async fn in_flight(source: &Client, target: &Client) -> Result<Option<InFlight>> {
    let op = "compare the schema change queues";
    let row = source
        .query_one("SELECT to_regclass('clonesync.ddl_queue') IS NOT NULL", &[])
        .await
        .map_err(|e| classify(op, e))?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = source
        .query_one(
            "SELECT coalesce(array_agg(q.id ORDER BY q.id), '{}'), \
                    coalesce(array_agg(extract(epoch FROM clock_timestamp() - q.captured_at)::float8 ORDER BY q.id), '{}') \
             FROM clonesync.ddl_queue q",
            &[],
        )
        .await
        .map_err(|e| classify(op, e))?;
    let (ids, ages): (Vec<i64>, Vec<f64>) = (row.get(0), row.get(1));
    let row = target
        .query_one("SELECT to_regclass('clonesync.ddl_queue') IS NOT NULL", &[])
        .await
        .map_err(|e| classify(op, e))?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    let missing: Vec<i64> = target
        .query_one(
            "SELECT coalesce(array_agg(x.n - 1), '{}')::bigint[] FROM unnest($1::bigint[]) WITH ORDINALITY x(id, n) \
             WHERE NOT EXISTS (SELECT 1 FROM clonesync.ddl_queue q WHERE q.id = x.id)",
            &[&ids],
        )
        .await
        .map_err(|e| classify(op, e))?
        .get(0);
    Ok(Some(InFlight {
        commands: missing.len() as i64,
        oldest_seconds: missing
            .iter()
            .filter_map(|i| ages.get(usize::try_from(*i).ok()?).copied())
            .reduce(f64::max),
    }))
}

/// How long a schema change replay may run on the copy before the monitor
/// cancels it (the command is then pending). PostgreSQL's apply worker
/// arms no `statement_timeout` (only a client session's statements start
/// that timer), so a replay that waits on something other than a lock
/// (`lock_timeout` bounds those at 30 s) would hold apply for every table;
/// the monitor's run interval adds up to one period to this bound.
pub const REPLAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Cancel every schema change replay on the copy `target` has run longer
/// than `timeout`: the apply records its command pending ("canceling
/// statement") and goes on. A replay tells it runs, and since when, by
/// its apply worker's `application_name` (`ddl_execute` sets it and puts
/// the old one back). Returns how many were cancelled.
pub async fn cancel_overdue_replays(target: &Client, timeout: std::time::Duration) -> Result<i64> {
    answer(
        target,
        "cancel overdue schema change replays",
        "SELECT count(*) FILTER (WHERE pg_catalog.pg_cancel_backend(a.pid)) \
         FROM pg_catalog.pg_stat_activity a \
         WHERE a.backend_type LIKE 'logical replication%' \
           AND a.application_name ~ '^clonesync replay since [0-9]+$' \
           AND pg_catalog.clock_timestamp() - pg_catalog.to_timestamp(substr(a.application_name, 24)::float8) \
               > make_interval(secs => $1::float8)",
        &[&timeout.as_secs_f64()],
    )
    .await
}

/// A command on a table that the source captured and the copy has not
/// received yet (its queue row has not arrived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChangeInFlight {
    pub table: crate::pg::TableName,
    pub command_tag: String,
    /// For a table made by `CREATE TABLE AS` / `SELECT INTO`: its
    /// definition as that command left it, with the role that ran it and
    /// the queue row's id. The rows it wrote precede the queue row in the
    /// stream, so apply needs the table before the command arrives.
    pub made_with_rows: Option<SourceDefinition>,
}

/// The table commands in flight from `source` to `target`, oldest first;
/// empty where either side has no queue.
pub async fn table_changes_in_flight(
    source: &Client,
    target: &Client,
) -> Result<Vec<TableChangeInFlight>> {
    let op = "list the schema changes in flight";
    for side in [source, target] {
        let installed: bool = answer(
            side,
            op,
            "SELECT to_regclass('clonesync.ddl_queue') IS NOT NULL",
            &[],
        )
        .await?;
        if !installed {
            return Ok(Vec::new());
        }
    }
    // Only a table made with its rows ships its definition: the others
    // need their names only.
    let rows = source
        .query(
            "SELECT q.id, q.command_tag, q.role_name, x -> 'definition' ->> 'schema', x -> 'definition' ->> 'name', \
                    CASE WHEN q.command_tag IN ('CREATE TABLE AS', 'SELECT INTO') THEN (x -> 'definition')::text END \
             FROM clonesync.ddl_queue q, jsonb_array_elements(q.commands) x \
             WHERE x -> 'definition' ->> 'kind' = 'table' \
             ORDER BY q.id",
            &[],
        )
        .await
        .map_err(|e| classify(op, e))?;
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let arrived: Vec<i64> = answer(
        target,
        op,
        "SELECT coalesce(array_agg(q.id), '{}') FROM clonesync.ddl_queue q WHERE q.id = ANY($1::bigint[])",
        &[&ids],
    )
    .await?;
    let arrived: std::collections::HashSet<i64> = arrived.into_iter().collect();
    let mut changes = Vec::new();
    for row in rows {
        let id: i64 = row.get(0);
        if arrived.contains(&id) {
            continue;
        }
        let (Some(schema), Some(name)) = (
            row.get::<_, Option<String>>(3),
            row.get::<_, Option<String>>(4),
        ) else {
            continue;
        };
        let Ok(table) = crate::pg::TableName::new(&schema, &name) else {
            continue;
        };
        let made_with_rows = row
            .get::<_, Option<String>>(5)
            .map(|definition| SourceDefinition {
                definition,
                owner: row.get(2),
                as_of: id,
            });
        changes.push(TableChangeInFlight {
            table,
            command_tag: row.get(1),
            made_with_rows,
        });
    }
    Ok(changes)
}

/// The capture's queue on one source database after a prune
/// ([`prune_queue`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSize {
    /// Rows this call removed.
    pub pruned: i64,
    pub rows: i64,
    /// The queue table with its indexes and TOAST.
    pub bytes: i64,
}

/// Remove the queue rows every logical slot of this database has
/// confirmed (`clonesync.ddl_queue_prune`), and say how big the queue is;
/// `None` where the capture is not installed. A capture installed before
/// the pruning existed is only measured.
pub async fn prune_queue(client: &Client) -> Result<Option<QueueSize>> {
    let op = "prune the schema change queue";
    let (queue, prune): (bool, bool) = {
        let row = client
            .query_one(
                "SELECT to_regclass('clonesync.ddl_queue') IS NOT NULL, \
                        to_regprocedure('clonesync.ddl_queue_prune()') IS NOT NULL \
                        AND EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = $1 AND evtenabled <> 'D')",
                &[&EVENT_TRIGGERS[0]],
            )
            .await
            .map_err(|e| classify(op, e))?;
        (row.get(0), row.get(1))
    };
    if !queue {
        return Ok(None);
    }
    let row = if prune {
        client
            .query_one("SELECT pruned, rows_left, bytes FROM clonesync.ddl_queue_prune()", &[])
            .await
    } else {
        client
            .query_one(
                "SELECT 0::bigint, count(*), pg_total_relation_size('clonesync.ddl_queue') FROM clonesync.ddl_queue",
                &[],
            )
            .await
    }
    .map_err(|e| classify(op, e))?;
    Ok(Some(QueueSize {
        pruned: row.get(0),
        rows: row.get(1),
        bytes: row.get(2),
    }))
}

/// The capture's queue rows on the source, oldest first (tests and the
/// drift report read them).
pub async fn queued_commands(client: &Client) -> Result<Vec<(i64, String)>> {
    let rows = client
        .query(
            "SELECT id, command_tag FROM clonesync.ddl_queue ORDER BY id",
            &[],
        )
        .await
        .map_err(|e| classify("read the schema change queue", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Give each table of `scope` that has no key (neither a primary key nor
/// a replica identity) REPLICA IDENTITY FULL, and record it in the
/// capture's `clonesync.ddl_identity_full`, so that removing the capture
/// gives it DEFAULT back ([`remove`]). The operator's consent is the
/// pipeline's `keyless_tables`; the capture must be installed. Returns the
/// tables changed, as `schema.name`; a second call changes none.
pub async fn give_keyless_full_identity(client: &Client, scope: &Scope) -> Result<Vec<String>> {
    let identities = match scope {
        Scope::AllTables => crate::pg::server::table_identities(client, None, None).await?,
        Scope::Schemas { schemas } => {
            let names: Vec<String> = schemas.iter().map(|s| s.as_str().to_string()).collect();
            crate::pg::server::table_identities(client, Some(&names), None).await?
        }
        Scope::Tables { tables } => {
            let pairs: Vec<(String, String)> = tables
                .iter()
                .map(|t| (t.schema.as_str().to_string(), t.name.as_str().to_string()))
                .collect();
            crate::pg::server::table_identities(client, None, Some(&pairs)).await?
        }
    };
    let op = "give a table without a key REPLICA IDENTITY FULL";
    let mut changed = Vec::new();
    for table in identities.iter().filter(|t| !t.is_replicable()) {
        client
            .batch_execute(&format!(
                "ALTER TABLE {}.{} REPLICA IDENTITY FULL",
                quote::ident(&table.schema),
                quote::ident(&table.name)
            ))
            .await
            .map_err(|e| classify(op, e))?;
        client
            .execute(
                "INSERT INTO clonesync.ddl_identity_full (relid, schema_name, table_name) \
                 SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 ON CONFLICT (relid) DO NOTHING",
                &[&table.schema, &table.name],
            )
            .await
            .map_err(|e| classify(op, e))?;
        changed.push(format!("{}.{}", table.schema, table.name));
    }
    Ok(changed)
}

/// Constraints of the copy held back while their table is copied (see
/// [`defer_unvalidated_constraints`]); clonesync's, like the rest of its
/// schema on the copy.
const DEFERRED_CONSTRAINTS: &str =
    "CREATE TABLE IF NOT EXISTS clonesync.ddl_deferred_constraint ( \
       schema_name text NOT NULL, table_name text NOT NULL, constraint_name text NOT NULL, \
       definition text NOT NULL, deferred_at timestamptz NOT NULL DEFAULT clock_timestamp(), \
       PRIMARY KEY (schema_name, table_name, constraint_name)); \
     REVOKE ALL ON clonesync.ddl_deferred_constraint FROM PUBLIC";

/// A table copy (the subscription's table sync) writes every row the
/// source holds, and the copy's table checks them against its
/// constraints. A `NOT VALID` check (or, on 18, not-null) constraint the
/// source added after rows that break it was replayed on the copy too, so
/// the copy of such a table would fail for ever. So before `tables` join
/// the subscription, their own `NOT VALID` check and not-null constraints
/// are recorded in `clonesync.ddl_deferred_constraint` and dropped on the
/// copy: only a plain table's with no children, and not inherited ones (a
/// parent's constraint is its children's too, and cannot be added back to
/// the parent alone); [`restore_deferred_constraints`] adds each back, still
/// `NOT VALID`, once its table's copy is done. Returns them as
/// `schema.table.constraint`.
pub async fn defer_unvalidated_constraints(
    target: &Client,
    tables: &[crate::pg::TableName],
) -> Result<Vec<String>> {
    let op = "hold back a NOT VALID constraint during a table copy";
    let schemas: Vec<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let rows = target
        .query(
            "SELECT n.nspname::text, r.relname::text, c.conname::text, pg_get_constraintdef(c.oid) \
             FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = r.relnamespace \
             WHERE (n.nspname, r.relname) IN (SELECT * FROM unnest($1::text[], $2::text[])) \
               AND NOT c.convalidated AND c.contype IN ('c', 'n') AND c.coninhcount = 0 \
               AND r.relkind = 'r' AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = r.oid) \
             ORDER BY 1, 2, 3",
            &[&schemas, &names],
        )
        .await
        .map_err(|e| classify(op, e))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    target
        .batch_execute(DEFERRED_CONSTRAINTS)
        .await
        .map_err(|e| classify(op, e))?;
    let mut deferred = Vec::new();
    for row in &rows {
        let (schema, table, constraint, definition): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        // Recorded first: a drop that fails leaves a record whose
        // constraint is still there, which the restore then forgets.
        target
            .execute(
                "INSERT INTO clonesync.ddl_deferred_constraint (schema_name, table_name, constraint_name, definition) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&schema, &table, &constraint, &definition],
            )
            .await
            .map_err(|e| classify(op, e))?;
        target
            .batch_execute(&format!(
                "ALTER TABLE ONLY {}.{} DROP CONSTRAINT {}",
                quote::ident(&schema),
                quote::ident(&table),
                quote::ident(&constraint)
            ))
            .await
            .map_err(|e| classify(op, e))?;
        deferred.push(format!("{schema}.{table}.{constraint}"));
    }
    Ok(deferred)
}

/// Add back each constraint [`defer_unvalidated_constraints`] held back
/// whose table's copy is done (`ready` in `pg_subscription_rel`), as it
/// was (`NOT VALID`); forget those whose table is gone, or whose
/// constraint a replayed command made again. One that cannot be added
/// stays recorded and is tried at the next refresh. Returns the ones
/// added back, as `schema.table.constraint`.
pub async fn restore_deferred_constraints(target: &Client) -> Result<Vec<String>> {
    let op = "add back a constraint held back during a table copy";
    // Looked for first: a query on a missing table is an error in the
    // copy's log at every refresh.
    let recorded: bool = target
        .query_one(
            "SELECT to_regclass('clonesync.ddl_deferred_constraint') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| classify(op, e))?
        .get(0);
    if !recorded {
        return Ok(Vec::new());
    }
    let rows = target
        .query(
            "SELECT d.schema_name, d.table_name, d.constraint_name, d.definition, \
                    to_regclass(quote_ident(d.schema_name) || '.' || quote_ident(d.table_name)) IS NOT NULL, \
                    EXISTS (SELECT 1 FROM pg_subscription_rel sr \
                             WHERE sr.srrelid = to_regclass(quote_ident(d.schema_name) || '.' || quote_ident(d.table_name)) \
                               AND sr.srsubstate = 'r') \
             FROM clonesync.ddl_deferred_constraint d \
             ORDER BY 1, 2, 3",
            &[],
        )
        .await;
    let rows = rows.map_err(|e| classify(op, e))?;
    let mut restored = Vec::new();
    for row in &rows {
        let (schema, table, constraint, definition): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let (exists, ready): (bool, bool) = (row.get(4), row.get(5));
        if exists && !ready {
            continue;
        }
        if exists {
            // The definition is the copy's own deparse of the constraint
            // (pg_get_constraintdef), written back as it came.
            let added = target
                .batch_execute(&format!(
                    "ALTER TABLE ONLY {}.{} ADD CONSTRAINT {} {definition}",
                    quote::ident(&schema),
                    quote::ident(&table),
                    quote::ident(&constraint)
                ))
                .await;
            match added {
                Ok(()) => restored.push(format!("{schema}.{table}.{constraint}")),
                Err(e) if code_of(&e) == Some(crate::pg::sqlstate::DUPLICATE_OBJECT) => {}
                Err(e) => {
                    // The server's message (a driver error alone reads "db error").
                    let why = classify(op, e);
                    tracing::warn!(table = %format!("{schema}.{table}"), constraint = %constraint, error = %why, "a constraint held back during the table copy could not be added back; tried again at the next refresh");
                    continue;
                }
            }
        }
        target
            .execute(
                "DELETE FROM clonesync.ddl_deferred_constraint \
                 WHERE schema_name = $1 AND table_name = $2 AND constraint_name = $3",
                &[&schema, &table, &constraint],
            )
            .await
            .map_err(|e| classify(op, e))?;
    }
    Ok(restored)
}
