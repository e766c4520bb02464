//! Comparing tables between two servers by content, and waiting for the
//! target to catch up.

use clonesync::error::{Error, Result};
use clonesync::pg::sqlstate::classify;
use clonesync::pg::{quote, TableName};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// Row count and an MD5 over every row's text, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableState {
    pub table: String,
    pub rows: i64,
    pub hash: String,
}

/// User tables in the given schemas.
pub async fn tables_in(client: &Client, schemas: &[&str]) -> Result<Vec<TableName>> {
    let schemas: Vec<String> = schemas.iter().map(|s| s.to_string()).collect();
    client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname = ANY($1) ORDER BY 1, 2",
            &[&schemas],
        )
        .await
        .map_err(|e| classify("list tables", e))?
        .iter()
        .map(|r| TableName::new(r.get(0), r.get(1)))
        .collect()
}

/// Primary key columns in key order, quoted; empty without one.
async fn key_columns(client: &Client, table: &TableName) -> Result<Vec<String>> {
    Ok(client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE i.indrelid = $1::text::regclass AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&table.quoted()],
        )
        .await
        .map_err(|e| classify("read key columns", e))?
        .iter()
        .map(|r| quote::ident(r.get(0)))
        .collect())
}

pub async fn table_state(client: &Client, table: &TableName) -> Result<TableState> {
    let keys = key_columns(client, table).await?;
    // Without a key, order by the whole row's text: still a total order of
    // the content.
    let order = if keys.is_empty() {
        "t::text".to_string()
    } else {
        keys.join(", ")
    };
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) FROM {} t",
                table.quoted()
            ),
            &[],
        )
        .await
        .map_err(|e| classify("hash a table", e))?;
    Ok(TableState {
        table: table.to_string(),
        rows: row.get(0),
        hash: row.get(1),
    })
}

/// States of every table on both sides, and the ones that differ.
pub async fn compare_tables(
    source: &Client,
    target: &Client,
    tables: &[TableName],
) -> Result<(Vec<TableState>, Vec<(TableState, TableState)>)> {
    let mut states = Vec::new();
    let mut differences = Vec::new();
    for table in tables {
        let a = table_state(source, table).await?;
        let b = table_state(target, table).await?;
        if a != b {
            differences.push((a.clone(), b));
        }
        states.push(a);
    }
    Ok((states, differences))
}

/// Commit a fresh token on the source and wait until the target shows it.
/// Changes apply in commit order, so once it is there, everything committed
/// before it is too.
pub async fn wait_for_marker(
    source: &Client,
    target: &Client,
    timeout: Duration,
) -> Result<Duration> {
    let marker = TableName::new("public", "sync_marker")?;
    wait_for_token(source, target, &marker, timeout).await
}

/// [`wait_for_marker`] with any table of shape `(id int PRIMARY KEY, token
/// text)` holding a row with id 1.
pub async fn wait_for_token(
    source: &Client,
    target: &Client,
    table: &TableName,
    timeout: Duration,
) -> Result<Duration> {
    let token = format!("{:?}", Instant::now());
    source
        .execute(
            &format!("UPDATE {} SET token = $1 WHERE id = 1", table.quoted()),
            &[&token],
        )
        .await
        .map_err(|e| classify("write the catch-up token", e))?;
    let read = format!("SELECT token FROM {} WHERE id = 1", table.quoted());
    let started = Instant::now();
    while started.elapsed() < timeout {
        let seen: Option<String> = target
            .query_opt(&read, &[])
            .await
            .map_err(|e| classify("read the catch-up token", e))?
            .map(|r| r.get(0));
        if seen.as_deref() == Some(token.as_str()) {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::LocalTimedOut {
        what: format!("{table} did not catch up within {timeout:?}"),
    })
}
