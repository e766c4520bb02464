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

/// `pg_sequences` gives `last_value` NULL before the first `nextval` (and
/// to a login without the privilege to read it): the next value is then
/// the start.
const POSITIONS: &str = "SELECT s.schemaname::text, s.sequencename::text, \
       CASE WHEN s.last_value IS NULL THEN s.start_value ELSE s.last_value + s.increment_by END, \
       s.increment_by, s.min_value, s.max_value \
     FROM pg_sequences s";

fn position(row: &tokio_postgres::Row) -> Result<SequencePosition> {
    Ok(SequencePosition {
        sequence: TableName::new(row.get(0), row.get(1))?,
        next: row.get(2),
        increment: row.get(3),
        min: row.get(4),
        max: row.get(5),
    })
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
         {POSITIONS} \
         JOIN pg_namespace n ON n.nspname = s.schemaname \
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename \
         WHERE c.oid IN (SELECT objid FROM scoped WHERE objid IN (SELECT oid FROM pg_class WHERE relkind = 'S')) \
         ORDER BY 1, 2"
    );
    client
        .query(&sql, &[&schemas, &tables])
        .await
        .map_err(|e| classify("read the sequences in scope", e))?
        .iter()
        .map(position)
        .collect()
}

/// Where the named sequences stand on this server (the ones it has).
pub async fn positions(client: &Client, names: &[TableName]) -> Result<Vec<SequencePosition>> {
    let schemas: Vec<&str> = names.iter().map(|n| n.schema.as_str()).collect();
    let relnames: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
    let sql = format!(
        "{POSITIONS} WHERE (s.schemaname::text, s.sequencename::text) IN \
           (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY 1, 2"
    );
    client
        .query(&sql, &[&schemas, &relnames])
        .await
        .map_err(|e| classify("read sequence positions", e))?
        .iter()
        .map(position)
        .collect()
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
