//! [`clonesync_local::compare`] for tests: a failure to read is a panic.

use clonesync::pg::TableName;
use clonesync_local::compare as shared;
pub use clonesync_local::compare::{wait_for_marker, wait_for_token, TableState};
use tokio_postgres::Client;

pub async fn tables_in(client: &Client, schemas: &[&str]) -> Vec<TableName> {
    shared::tables_in(client, schemas)
        .await
        .expect("list tables")
}

pub async fn table_state(client: &Client, table: &TableName) -> TableState {
    shared::table_state(client, table)
        .await
        .expect("hash table")
}

pub async fn compare_tables(
    source: &Client,
    target: &Client,
    tables: &[TableName],
) -> (Vec<TableState>, Vec<(TableState, TableState)>) {
    shared::compare_tables(source, target, tables)
        .await
        .expect("compare tables")
}
