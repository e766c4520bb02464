//! Replication slots: one function per question or action.

use crate::error::{Error, Result};
use crate::pg::sqlstate::{classify, code_of, CONFIGURATION_LIMIT_EXCEEDED, OBJECT_IN_USE};
use crate::pg::{Lsn, SlotName};
use postgres_types::PgLsn;
use std::time::Duration;
use tokio_postgres::{Client, Row};

/// A row of `pg_replication_slots`, the columns we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    pub name: String,
    pub slot_type: String,
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub temporary: bool,
    pub active: bool,
    pub active_pid: Option<i32>,
    pub restart_lsn: Option<Lsn>,
    pub confirmed_flush_lsn: Option<Lsn>,
    pub wal_status: Option<String>,
}

const SLOT_COLUMNS: &str = "slot_name::text, slot_type, plugin::text, database::text, temporary, \
     active, active_pid, restart_lsn, confirmed_flush_lsn, wal_status";

fn slot_from_row(row: &Row) -> SlotInfo {
    SlotInfo {
        name: row.get(0),
        slot_type: row.get(1),
        plugin: row.get(2),
        database: row.get(3),
        temporary: row.get(4),
        active: row.get(5),
        active_pid: row.get(6),
        restart_lsn: row.get::<_, Option<PgLsn>>(7).map(Lsn::from),
        confirmed_flush_lsn: row.get::<_, Option<PgLsn>>(8).map(Lsn::from),
        wal_status: row.get(9),
    }
}

pub async fn slot_info(client: &Client, name: &str) -> Result<Option<SlotInfo>> {
    let sql = format!("SELECT {SLOT_COLUMNS} FROM pg_replication_slots WHERE slot_name = $1");
    let row = client
        .query_opt(&sql, &[&name])
        .await
        .map_err(|e| classify("read replication slot", e))?;
    Ok(row.as_ref().map(slot_from_row))
}

/// Every logical slot on the server, in every database.
pub async fn logical_slots(client: &Client) -> Result<Vec<SlotInfo>> {
    let sql = format!(
        "SELECT {SLOT_COLUMNS} FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| classify("list replication slots", e))?;
    Ok(rows.iter().map(slot_from_row).collect())
}

/// The `application_name` of the WAL sender process `pid` (a
/// subscription's apply worker connects with its subscription's name).
pub async fn consumer_name(client: &Client, pid: i32) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT application_name FROM pg_stat_replication WHERE pid = $1",
            &[&pid],
        )
        .await
        .map_err(|e| classify("read slot consumer", e))?;
    Ok(row.map(|r| r.get(0)))
}

/// Outcome of trying to create a slot.
pub enum SlotCreation {
    Created { consistent_lsn: Lsn },
    AlreadyExists,
}

/// Create a pgoutput slot in the current database. The returned LSN is the
/// slot's consistent point: every transaction committing after it will be
/// decoded.
pub async fn create_logical_slot(client: &Client, name: &SlotName) -> Result<SlotCreation> {
    let result = client
        .query_one(
            "SELECT lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&name.as_str()],
        )
        .await;
    match result {
        Ok(row) => Ok(SlotCreation::Created {
            consistent_lsn: Lsn::from(row.get::<_, PgLsn>(0)),
        }),
        Err(e) if code_of(&e) == Some(crate::pg::sqlstate::DUPLICATE_OBJECT) => {
            Ok(SlotCreation::AlreadyExists)
        }
        Err(e) if code_of(&e) == Some(CONFIGURATION_LIMIT_EXCEEDED) => Err(Error::NoFreeSlots {
            detail: e
                .as_db_error()
                .map(|db| db.message().to_string())
                .unwrap_or_default(),
        }),
        Err(e) => Err(classify("create replication slot", e)),
    }
}

/// Drop a slot if it exists. A slot in use (its consumer still connected)
/// cannot be dropped, and leaving it would retain WAL on the source until
/// the disk fills; so its WAL sender is terminated and the drop retried.
/// Returns whether a slot was dropped.
pub async fn drop_slot_if_exists(client: &Client, name: &str) -> Result<bool> {
    for _attempt in 0..20 {
        let Some(slot) = slot_info(client, name).await? else {
            return Ok(false);
        };
        if let Some(pid) = slot.active_pid {
            tracing::info!(
                slot = name,
                pid,
                "terminating the slot's WAL sender before dropping it"
            );
            client
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .await
                .map_err(|e| classify("terminate the slot's WAL sender", e))?;
        }
        match client
            .execute("SELECT pg_drop_replication_slot($1)", &[&name])
            .await
        {
            Ok(_) => return Ok(true),
            // Gone meanwhile: the goal is reached.
            Err(e) if code_of(&e) == Some(crate::pg::sqlstate::UNDEFINED_OBJECT) => {
                return Ok(false)
            }
            // Still active (the WAL sender takes a moment to exit, or the
            // subscriber reconnected): terminate again and retry.
            Err(e) if code_of(&e) == Some(OBJECT_IN_USE) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(classify("drop replication slot", e)),
        }
    }
    Err(Error::TransientDatabase {
        operation: "drop replication slot".into(),
        message: format!("slot {name:?} stayed in use"),
        cause: None,
    })
}
