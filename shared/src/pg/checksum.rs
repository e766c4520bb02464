//! Hashing a table's rows by key range, read the same way on both sides,
//! for the online verification ([`crate::steps::verify_table`]).
//!
//! A row's hash is `hash_record_extended(ROW(columns), 0)` over the
//! source's columns, by name, in the source's column order (so a column
//! the target placed elsewhere is still compared with its namesake). A
//! column of a common type whose hash follows its equality exactly
//! ([`NATIVE_TYPES`]) is hashed as it is, by its type's own hash function;
//! any other is hashed as its text (a type may have no hash function, or
//! equal values of other text), which costs its output function: hashing
//! the row's text was 2.6 times slower on a table of numbers, text and
//! timestamps. Each row's hash is mixed once more before the sum (see
//! `row_hash_expression`). A range's hash is its row count and the sum of its rows' hashes: the sum
//! does not depend on the order rows are read in, so no sort is needed,
//! and unlike an xor two equal rows (a table without a key may hold them)
//! do not cancel. PostgreSQL sums `bigint` in a 128-bit accumulator, so
//! the sum is exact and cheap.
//!
//! Row text depends on a few settings (time zone, date and interval
//! style, float digits, bytea and money output): [`prepare`] sets them the
//! same on every session that hashes.
//!
//! Keys travel as text (each key column's own output) and go back to the
//! server as text-format parameters whose type the server infers from the
//! key column, so a key of any type is compared in its type's own order
//! and no value is ever formatted into SQL.

use crate::error::{Error, Result};
use crate::pg::sqlstate::classify;
use crate::pg::{quote, TableName};
use bytes::BytesMut;
use postgres_types::{Format, IsNull, ToSql, Type};
use tokio_postgres::Client;

/// One row's key: each key column's text, in key order.
pub type Key = Vec<String>;

/// What is hashed of a table: its key (primary key, else the replica
/// identity index; empty for a table compared whole) and every column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLayout {
    pub table: TableName,
    pub key: Vec<String>,
    pub columns: Vec<Column>,
}

/// One column compared, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// Hashed by its type's own hash function, not as text.
    pub native: bool,
}

/// Types hashed by their own hash function: each one's hash agrees with
/// its equality, and equal values are the same value (so no `numeric`,
/// whose `1.0` equals `1.00`, no floats, whose `-0` equals `0`, and text
/// only under a deterministic collation).
/// `jsonb` is not among them: its hash lets `{}`, `[]` and NULL collide.
pub const NATIVE_TYPES: &str =
    "{int2,int4,int8,bool,text,varchar,date,timestamp,timestamptz,time,uuid,bytea,oid,name}";

/// A range's row count and the sum of its rows' hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RangeHash {
    pub rows: i64,
    pub sum: i128,
}

/// Keys strictly after `after` and up to `upto` (inclusive); an open end
/// is unbounded, so rows the target has beyond the source's first or last
/// key are in a range too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRange {
    pub after: Option<Key>,
    pub upto: Option<Key>,
}

/// A parameter sent in text format, for a column of any type: the server
/// reads it with the column type's input function.
#[derive(Debug)]
struct TextParam<'a>(&'a str);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    postgres_types::to_sql_checked!();
}

/// The settings row text depends on, the same on every hashing session.
pub async fn prepare(client: &Client) -> Result<()> {
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
             SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C'; \
             SET xmloption = 'content'",
        )
        .await
        .map_err(|e| classify("prepare a verification session", e))
}

/// The layout of `table` on this server; `None` when it has no such table.
pub async fn layout(client: &Client, table: &TableName) -> Result<Option<TableLayout>> {
    let op = "read a table's key and columns";
    let rows = client
        .query(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&table.schema.as_str(), &table.name.as_str()],
        )
        .await
        .map_err(|e| classify(op, e))?;
    let Some(oid) = rows.first().map(|r| r.get::<_, u32>(0)) else {
        return Ok(None);
    };
    // The primary key, else the replica identity index: the columns
    // logical replication itself identifies a row by.
    let key = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indexrelid = (SELECT x.indexrelid FROM pg_index x WHERE x.indrelid = $1 \
                                   AND (x.indisprimary OR x.indisreplident) \
                                   ORDER BY x.indisprimary DESC LIMIT 1) \
             ORDER BY k.n",
            &[&oid],
        )
        .await
        .map_err(|e| classify(op, e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let columns = columns(client, oid).await?;
    Ok(Some(TableLayout {
        table: table.clone(),
        key,
        columns,
    }))
}

async fn columns(client: &Client, oid: u32) -> Result<Vec<Column>> {
    Ok(client
        .query(
            "SELECT a.attname::text, \
                    a.atttypid = ANY ($2::text::regtype[]) \
                    AND (a.attcollation = 0 OR (SELECT c.collisdeterministic FROM pg_collation c \
                                                WHERE c.oid = a.attcollation)) \
             FROM pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid, &NATIVE_TYPES],
        )
        .await
        .map_err(|e| classify("read a table's columns", e))?
        .iter()
        .map(|r| Column {
            name: r.get(0),
            native: r.get(1),
        })
        .collect())
}

/// The layout's columns the other side's `table` lacks (all of them when
/// it has no such table).
pub async fn missing_columns(client: &Client, layout: &TableLayout) -> Result<Vec<String>> {
    let present: Vec<String> = match self::layout(client, &layout.table).await? {
        Some(other) => other.columns.into_iter().map(|c| c.name).collect(),
        None => Vec::new(),
    };
    Ok(layout
        .columns
        .iter()
        .filter(|c| !present.contains(&c.name))
        .map(|c| c.name.clone())
        .collect())
}

/// `ROW(a, b::text, ...)` hashed: each column natively or as its text,
/// the text under `"C"` (a cast keeps the column's collation, and a
/// non-deterministic one hashes `'Hello'` and `'HELLO'` alike). The row's
/// hash goes through `hashint8extended` before it is summed: the record
/// hash is linear in its fields' hashes, so a plain sum of record hashes
/// would not change when two rows swap a value.
fn row_hash_expression(layout: &TableLayout) -> String {
    let fields: Vec<String> = layout
        .columns
        .iter()
        .map(|c| {
            if c.native {
                quote::ident(&c.name)
            } else {
                format!("({}::text COLLATE \"C\")", quote::ident(&c.name))
            }
        })
        .collect();
    format!(
        "hashint8extended(hash_record_extended(ROW({}), 0), 0)",
        fields.join(", ")
    )
}

/// The key columns qualified by the table's alias `t`, as `ORDER BY` and
/// `WHERE` name them (so a key column called like an output column is
/// still the column).
fn qualified_key(layout: &TableLayout) -> String {
    layout
        .key
        .iter()
        .map(|c| format!("t.{}", quote::ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The key columns as text, in key order. Each is renamed (`k0`, ...):
/// an output column keeping the key's name would make `ORDER BY key`
/// sort by the text, not by the key's own type.
fn key_text(layout: &TableLayout) -> String {
    layout
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{}::text AS k{i}", quote::ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$n, $n+1, ...` for one key.
fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `WHERE` (or nothing) for a range, and its parameters.
fn range_clause<'a>(layout: &TableLayout, range: &'a KeyRange) -> (String, Vec<TextParam<'a>>) {
    let key = format!("({})", qualified_key(layout));
    let width = layout.key.len();
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(after) = &range.after {
        conditions.push(format!(
            "{key} > ({})",
            placeholders(params.len() + 1, width)
        ));
        params.extend(after.iter().map(|v| TextParam(v)));
    }
    if let Some(upto) = &range.upto {
        conditions.push(format!(
            "{key} <= ({})",
            placeholders(params.len() + 1, width)
        ));
        params.extend(upto.iter().map(|v| TextParam(v)));
    }
    if conditions.is_empty() {
        (String::new(), params)
    } else {
        (format!(" WHERE {}", conditions.join(" AND ")), params)
    }
}

fn refs<'a>(params: &'a [TextParam<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn decode_key(row: &tokio_postgres::Row, width: usize) -> Key {
    (0..width).map(|i| row.get::<_, String>(i)).collect()
}

/// The key `offset` rows into the range (0-based), in key order; `None`
/// past its end. Walks the key's index: chunk boundaries are found this
/// way, one chunk's worth of index entries at a time.
pub async fn key_at(
    client: &Client,
    layout: &TableLayout,
    range: &KeyRange,
    offset: i64,
) -> Result<Option<Key>> {
    let (clause, params) = range_clause(layout, range);
    let sql = format!(
        "SELECT {} FROM {} AS t{clause} ORDER BY {} OFFSET {offset} LIMIT 1",
        key_text(layout),
        layout.table.quoted(),
        qualified_key(layout),
    );
    let rows = client
        .query(&sql, &refs(&params))
        .await
        .map_err(|e| classify("find a key range boundary", e))?;
    Ok(rows.first().map(|r| decode_key(r, layout.key.len())))
}

/// The count and hash sum of the rows in `range` (every row when the
/// layout has no key).
pub async fn hash_range(
    client: &Client,
    layout: &TableLayout,
    range: &KeyRange,
) -> Result<RangeHash> {
    let (clause, params) = if layout.key.is_empty() {
        (String::new(), Vec::new())
    } else {
        range_clause(layout, range)
    };
    let sql = format!(
        "SELECT count(*), coalesce(sum({}), 0)::text FROM {} AS t{clause}",
        row_hash_expression(layout),
        layout.table.quoted(),
    );
    let row = client
        .query_one(&sql, &refs(&params))
        .await
        .map_err(|e| classify("hash a key range", e))?;
    let sum: String = row.get(1);
    Ok(RangeHash {
        rows: row.get(0),
        sum: sum.parse().map_err(|_| Error::Database {
            operation: "hash a key range".into(),
            sqlstate: "XX000".into(),
            message: format!("the hash sum {sum:?} is not a number"),
            cause: None,
        })?,
    })
}

/// Every row of `range` as (key, hash), in key order; at most `limit`.
pub async fn row_hashes(
    client: &Client,
    layout: &TableLayout,
    range: &KeyRange,
    limit: i64,
) -> Result<Vec<(Key, i64)>> {
    let (clause, params) = range_clause(layout, range);
    let sql = format!(
        "SELECT {}, {} FROM {} AS t{clause} ORDER BY {} LIMIT {limit}",
        key_text(layout),
        row_hash_expression(layout),
        layout.table.quoted(),
        qualified_key(layout),
    );
    let width = layout.key.len();
    Ok(client
        .query(&sql, &refs(&params))
        .await
        .map_err(|e| classify("hash the rows of a key range", e))?
        .iter()
        .map(|r| (decode_key(r, width), r.get(width)))
        .collect())
}

/// One row's hash by key; `None` when no row has that key.
pub async fn row_hash(client: &Client, layout: &TableLayout, key: &Key) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT {} FROM {} AS t WHERE ({}) = ({})",
        row_hash_expression(layout),
        layout.table.quoted(),
        qualified_key(layout),
        placeholders(1, layout.key.len()),
    );
    let params: Vec<TextParam> = key.iter().map(|v| TextParam(v)).collect();
    Ok(client
        .query_opt(&sql, &refs(&params))
        .await
        .map_err(|e| classify("hash a row", e))?
        .map(|r| r.get(0)))
}

/// Whether the target's copy of `table` is still being made (its initial
/// copy not yet `ready` in the named subscriptions).
pub async fn initial_copy_running(
    client: &Client,
    subscriptions: &[String],
    table: &TableName,
) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_subscription_rel r \
               JOIN pg_subscription s ON s.oid = r.srsubid \
               JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
               WHERE s.subname = ANY($1) AND n.nspname = $2 AND c.relname = $3 AND r.srsubstate <> 'r')",
            &[&subscriptions, &table.schema.as_str(), &table.name.as_str()],
        )
        .await
        .map_err(|e| classify("read a table's copy state", e))?;
    Ok(row.get(0))
}
