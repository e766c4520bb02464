//! The shape of tables, read the same way on both sides so that source and
//! target can be compared: columns (type, nullability, default), primary
//! key and indexes, every expression written with schema-qualified names.

use crate::error::Result;
use crate::pg::sqlstate::classify;
use crate::pg::TableName;
use crate::pipeline::Scope;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnShape {
    pub name: String,
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableShape {
    /// In column order.
    pub columns: Vec<ColumnShape>,
    pub primary_key: Option<String>,
    /// Index name → definition.
    pub indexes: BTreeMap<String, String>,
}

/// The shape of every table in `scope` (the schema change queue and the
/// system schemas left out).
pub async fn table_shapes(
    client: &Client,
    scope: &Scope,
) -> Result<BTreeMap<TableName, TableShape>> {
    let op = "read table shapes";
    let (schemas, tables): (Option<Vec<String>>, Option<Vec<String>>) = match scope {
        Scope::AllTables => (None, None),
        Scope::Schemas { schemas } => (
            Some(schemas.iter().map(|s| s.as_str().to_string()).collect()),
            None,
        ),
        Scope::Tables { tables } => (None, Some(tables.iter().map(|t| t.quoted()).collect())),
    };
    // search_path = pg_catalog: format_type, pg_get_expr and
    // pg_get_indexdef then qualify every name the same way on both sides.
    client
        .batch_execute("BEGIN READ ONLY; SET LOCAL search_path = pg_catalog")
        .await
        .map_err(|e| classify(op, e))?;
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, \
               (SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.attname::text, \
                    'data_type', format_type(a.atttypid, a.atttypmod), 'not_null', a.attnotnull, \
                    'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, 0) ELSE pg_get_expr(d.adbin, d.adrelid) END) ORDER BY a.attnum), '[]'::jsonb) \
                  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text, \
               (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'), \
               (SELECT coalesce(jsonb_object_agg(i.relname::text, pg_get_indexdef(i.oid)), '{}'::jsonb) \
                  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid)::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'clonesync') \
               AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
               AND ($1::text[] IS NULL OR n.nspname = ANY($1)) \
               AND ($2::text[] IS NULL OR (quote_ident(n.nspname) || '.' || quote_ident(c.relname)) = ANY($2)) \
             ORDER BY 1, 2",
            &[&schemas, &tables],
        )
        .await;
    let done = client.batch_execute("COMMIT").await;
    let rows = rows.map_err(|e| classify(op, e))?;
    done.map_err(|e| classify(op, e))?;
    let mut shapes = BTreeMap::new();
    for row in rows {
        let Ok(table) = TableName::new(row.get(0), row.get(1)) else {
            continue;
        };
        let columns: String = row.get(2);
        let indexes: String = row.get(4);
        shapes.insert(
            table,
            TableShape {
                columns: serde_json::from_str(&columns).unwrap_or_default(),
                primary_key: row.get(3),
                indexes: serde_json::from_str(&indexes).unwrap_or_default(),
            },
        );
    }
    Ok(shapes)
}
