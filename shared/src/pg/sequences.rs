//! Sequences: which are in a pipeline's scope, where each stands, and
//! moving one forward on the target. Logical replication carries no
//! sequence changes, so the target's sequences stay where the clone left
//! them while the source's advance.

use crate::error::Result;
use crate::pg::sqlstate::classify;
use crate::pg::TableName;
use crate::pipeline::Scope;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// Where one sequence stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencePosition {
    pub sequence: TableName,
    /// The value the next `nextval` returns.
    pub next: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
}

/// Each sequence's parameters; its position is read from the sequence
/// itself ([`position_of`]), because `pg_sequences.last_value` is NULL for
/// a sequence set as not called (a `RESTART`, `setval(s, n, false)`) and
/// for a login that may not read it, both of which would read as "at its
/// start".
const PARAMETERS: &str = "SELECT s.schemaname::text, s.sequencename::text, \
       s.increment_by, s.min_value, s.max_value \
     FROM pg_sequences s";

/// Where one sequence stands: the value its next `nextval` returns. A
/// sequence at its limit reads as at the limit.
async fn position_of(client: &Client, row: &tokio_postgres::Row) -> Result<SequencePosition> {
    let sequence = TableName::new(row.get(0), row.get(1))?;
    let (increment, min, max): (i64, i64, i64) = (row.get(2), row.get(3), row.get(4));
    let state = client
        .query_one(
            &format!("SELECT last_value, is_called FROM {}", sequence.quoted()),
            &[],
        )
        .await
        .map_err(|e| classify("read a sequence's position", e))?;
    let (last, called): (i64, bool) = (state.get(0), state.get(1));
    let next = if called {
        last.saturating_add(increment).clamp(min, max)
    } else {
        last
    };
    Ok(SequencePosition {
        sequence,
        next,
        increment,
        min,
        max,
    })
}

async fn positions_of(
    client: &Client,
    rows: &[tokio_postgres::Row],
) -> Result<Vec<SequencePosition>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(position_of(client, row).await?);
    }
    Ok(out)
}

/// Every sequence in `scope`: those owned by a table in scope (`serial`
/// and identity columns) or feeding one's column default, and with a
/// schema scope (or all tables) every sequence in those schemas.
/// clonesync's own schema is left out.
pub async fn in_scope(client: &Client, scope: &Scope) -> Result<Vec<SequencePosition>> {
    let (schemas, tables): (Option<Vec<String>>, Vec<String>) = match scope {
        Scope::AllTables => (None, Vec::new()),
        Scope::Schemas { schemas } => (
            Some(schemas.iter().map(|s| s.as_str().to_string()).collect()),
            Vec::new(),
        ),
        Scope::Tables { tables } => (
            Some(Vec::new()),
            tables.iter().map(|t| t.quoted()).collect(),
        ),
    };
    let sql = format!(
        "WITH scoped_tables AS ( \
           SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'clonesync') \
             AND n.nspname NOT LIKE 'pg\\_%' \
             AND ($1::text[] IS NULL OR n.nspname = ANY($1) \
                  OR c.oid = ANY (SELECT to_regclass(t) FROM unnest($2::text[]) AS t)) \
         ), scoped AS ( \
           SELECT d.objid FROM pg_depend d \
           WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
             AND d.deptype IN ('a', 'i') AND d.refobjid IN (SELECT oid FROM scoped_tables) \
           UNION \
           SELECT d.refobjid FROM pg_attrdef ad JOIN pg_depend d \
             ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass \
           WHERE ad.adrelid IN (SELECT oid FROM scoped_tables) \
           UNION \
           SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'clonesync') \
             AND n.nspname NOT LIKE 'pg\\_%' AND ($1::text[] IS NULL OR n.nspname = ANY($1)) \
         ) \
         {PARAMETERS} \
         JOIN pg_namespace n ON n.nspname = s.schemaname \
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename \
         WHERE c.oid IN (SELECT objid FROM scoped WHERE objid IN (SELECT oid FROM pg_class WHERE relkind = 'S')) \
         ORDER BY 1, 2"
    );
    let rows = client
        .query(&sql, &[&schemas, &tables])
        .await
        .map_err(|e| classify("read the sequences in scope", e))?;
    positions_of(client, &rows).await
}

/// Where the named sequences stand on this server (the ones it has).
pub async fn positions(client: &Client, names: &[TableName]) -> Result<Vec<SequencePosition>> {
    let schemas: Vec<&str> = names.iter().map(|n| n.schema.as_str()).collect();
    let relnames: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
    let sql = format!(
        "{PARAMETERS} WHERE (s.schemaname::text, s.sequencename::text) IN \
           (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY 1, 2"
    );
    let rows = client
        .query(&sql, &[&schemas, &relnames])
        .await
        .map_err(|e| classify("read sequence positions", e))?;
    positions_of(client, &rows).await
}

/// Make `next` the value the sequence's next `nextval` returns: its last
/// value set one increment before, as called (`pg_sequences` reads a
/// sequence set as not called as never used, and so at its start).
pub async fn set_next(client: &Client, position: &SequencePosition, next: i64) -> Result<()> {
    let last = next
        .saturating_sub(position.increment)
        .clamp(position.min, position.max);
    let called = last != next;
    client
        .execute(
            "SELECT setval($1::text::regclass, $2, $3)",
            &[&position.sequence.quoted(), &last, &called],
        )
        .await
        .map_err(|e| classify("set a sequence", e))?;
    Ok(())
}
