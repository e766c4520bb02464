//! The WAL positions clonesync reads, in one place: where a primary's
//! WAL stands (written, flushed, inserted), where the application's
//! writes stand, where the named slots have confirmed to, where an Aurora
//! clone's data starts, and the marker a recovery target stops before.
//! Readings that carry a position inside a larger row (a slot's listing,
//! a lag reading taken in the same snapshot as `pg_current_wal_lsn()`)
//! stay with that row, in `slot.rs` and `lag.rs`.

use crate::error::Result;
use crate::pg::sqlstate::classify;
use crate::pg::Lsn;
use postgres_types::PgLsn;
use tokio_postgres::Client;

/// Write a non-transactional logical message (which pgoutput skips unless
/// asked for messages): a WAL record at or after the current position,
/// for a recovery target to stop before even when the server is idle.
pub async fn emit_wal_marker(client: &Client, content: &str) -> Result<()> {
    client
        .execute(
            "SELECT pg_logical_emit_message(false, 'clonesync', $1)",
            &[&content],
        )
        .await
        .map_err(|e| classify("emit a WAL marker", e))?;
    Ok(())
}

/// `aurora_volume_logical_start_lsn()`: the LSN an Aurora clone's data
/// corresponds to; `None` when the server has no such function (not
/// Aurora, or an engine version before 15.2). Aurora's own functions are
/// in pg_catalog, and only there is it looked for (the session's pinned
/// search_path): one a role made in `public` would decide where the copy
/// starts.
pub async fn aurora_volume_logical_start_lsn(client: &Client) -> Result<Option<Lsn>> {
    let exists: bool = client
        .query_one(
            "SELECT to_regprocedure('pg_catalog.aurora_volume_logical_start_lsn()') IS NOT NULL",
            &[],
        )
        .await
        .map_err(|e| classify("look up aurora_volume_logical_start_lsn", e))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT pg_catalog.aurora_volume_logical_start_lsn()", &[])
        .await
        .map_err(|e| classify("read aurora_volume_logical_start_lsn", e))?;
    Ok(Some(Lsn::from(row.get::<_, PgLsn>(0))))
}

/// The WAL position flushed to disk on a primary.
pub async fn flush_lsn(client: &Client) -> Result<Lsn> {
    let row = client
        .query_one("SELECT pg_current_wal_flush_lsn()", &[])
        .await
        .map_err(|e| classify("read flush LSN", e))?;
    Ok(Lsn::from(row.get::<_, PgLsn>(0)))
}

/// Where the source's writes stand: the WAL insert position, and how
/// many client sessions hold an open transaction that wrote (has an xid),
/// prepared transactions included, this session aside. Background
/// workers (autovacuum's `ANALYZE` takes an xid) are not the
/// application's writes and are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WritePosition {
    pub lsn: Lsn,
    pub open_writers: i64,
}

pub async fn write_position(client: &Client) -> Result<WritePosition> {
    let row = client
        .query_one(
            "SELECT pg_current_wal_insert_lsn(), \
                    (SELECT count(*) FROM pg_stat_activity \
                      WHERE backend_xid IS NOT NULL AND backend_type = 'client backend' \
                        AND pid <> pg_backend_pid()) \
                    + (SELECT count(*) FROM pg_prepared_xacts)",
            &[],
        )
        .await
        .map_err(|e| classify("read the write position", e))?;
    Ok(WritePosition {
        lsn: Lsn::from(row.get::<_, PgLsn>(0)),
        open_writers: row.get(1),
    })
}

/// The WAL position written so far on a primary (`pg_current_wal_lsn()`).
pub async fn current_lsn(client: &Client) -> Result<Lsn> {
    let row = client
        .query_one("SELECT pg_current_wal_lsn()", &[])
        .await
        .map_err(|e| classify("read current LSN", e))?;
    Ok(Lsn::from(row.get::<_, PgLsn>(0)))
}

/// The source's WAL insert position, read after a hash: every commit the
/// hash's snapshot saw ends at or before it, asynchronous commits too
/// (they are visible before their WAL is flushed).
pub async fn insert_lsn(client: &Client) -> Result<Lsn> {
    let row = client
        .query_one("SELECT pg_current_wal_insert_lsn()", &[])
        .await
        .map_err(|e| classify("read the WAL insert position", e))?;
    Ok(Lsn::from(row.get::<_, PgLsn>(0)))
}

/// WAL page and segment sizes (`wal_block_size`, `wal_segment_size`).
pub async fn wal_geometry(client: &Client) -> Result<(u64, u64)> {
    let row = client
        .query_one(
            "SELECT current_setting('wal_block_size')::bigint, \
                    pg_size_bytes(current_setting('wal_segment_size'))",
            &[],
        )
        .await
        .map_err(|e| classify("read the WAL page size", e))?;
    Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
}

/// The least confirmed position of the named slots (`None` when one is
/// missing or has none).
pub async fn least_confirmed(client: &Client, slots: &[String]) -> Result<Option<Lsn>> {
    let row = client
        .query_one(
            "SELECT count(*) = cardinality($1::text[]) AND bool_and(confirmed_flush_lsn IS NOT NULL), \
                    min(confirmed_flush_lsn) \
             FROM pg_replication_slots WHERE slot_name = ANY($1)",
            &[&slots],
        )
        .await
        .map_err(|e| classify("read the slots' confirmed position", e))?;
    let all: Option<bool> = row.get(0);
    let least: Option<PgLsn> = row.get(1);
    Ok(match (all, least) {
        (Some(true), Some(lsn)) => Some(Lsn::from(lsn)),
        _ => None,
    })
}
