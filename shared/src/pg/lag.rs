//! How far behind replication is: the one reading of slots (on a source)
//! and subscriptions (on a target) that `verify` and the lag monitor share.

use crate::error::Result;
use crate::pg::sqlstate::classify;
use crate::pg::Lsn;
use postgres_types::PgLsn;
use std::collections::BTreeMap;
use tokio_postgres::Client;

/// A logical slot and the server's current WAL position, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotLag {
    pub slot: String,
    pub database: Option<String>,
    pub active: bool,
    /// `pg_current_wal_lsn()` when the row was read.
    pub current_lsn: Lsn,
    pub confirmed_flush_lsn: Option<Lsn>,
    pub restart_lsn: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// Bytes that can still be written before the slot is in danger of
    /// losing WAL; `None` when `max_slot_wal_keep_size` is unlimited.
    pub safe_wal_size: Option<i64>,
    /// Why the slot was invalidated (PostgreSQL 17+; `None` when it is
    /// valid or the version does not say).
    pub invalidation_reason: Option<String>,
}

impl SlotLag {
    /// `pg_current_wal_lsn() - confirmed_flush_lsn`; `None` before the
    /// slot is consistent.
    pub fn lag_bytes(&self) -> Option<u64> {
        self.confirmed_flush_lsn
            .map(|lsn| lsn.bytes_until(self.current_lsn))
    }

    /// `pg_current_wal_lsn() - restart_lsn`: WAL the server keeps for it.
    pub fn retained_bytes(&self) -> Option<u64> {
        self.restart_lsn
            .map(|lsn| lsn.bytes_until(self.current_lsn))
    }
}

// wal_status, safe_wal_size (PostgreSQL 13) and invalidation_reason (17)
// are read through to_jsonb so the query runs on a server without them.
const SLOTS_SQL: &str = "\
SELECT s.slot_name::text, s.database::text, s.active, pg_current_wal_lsn(), \
       s.confirmed_flush_lsn, s.restart_lsn, \
       to_jsonb(s) ->> 'wal_status', \
       (to_jsonb(s) ->> 'safe_wal_size')::bigint, \
       to_jsonb(s) ->> 'invalidation_reason' \
FROM pg_replication_slots s \
WHERE s.slot_type = 'logical' AND ($1::text IS NULL OR s.slot_name = $1) ORDER BY 1";

/// Every logical slot on the server `client` is connected to, or only the
/// one named `only`.
pub async fn slot_lags(client: &Client, only: Option<&str>) -> Result<Vec<SlotLag>> {
    let rows = client
        .query(SLOTS_SQL, &[&only])
        .await
        .map_err(|e| classify("read replication slots", e))?;
    Ok(rows
        .iter()
        .map(|row| SlotLag {
            slot: row.get(0),
            database: row.get(1),
            active: row.get(2),
            current_lsn: Lsn::from(row.get::<_, PgLsn>(3)),
            confirmed_flush_lsn: row.get::<_, Option<PgLsn>>(4).map(Lsn::from),
            restart_lsn: row.get::<_, Option<PgLsn>>(5).map(Lsn::from),
            wal_status: row.get(6),
            safe_wal_size: row.get(7),
            invalidation_reason: row.get(8),
        })
        .collect())
}

/// A subscription of the target's current database and its apply worker.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionLag {
    pub subscription: String,
    pub enabled: bool,
    /// The apply worker's process, when one runs.
    pub apply_worker_pid: Option<i32>,
    /// `now() - last_msg_receipt_time`: anything at all heard from the
    /// source (data or keepalive).
    pub seconds_since_last_message: Option<f64>,
    /// `now() - latest_end_time`: since the source last reported its WAL
    /// end to a caught-up worker. The source sends that report (a
    /// keepalive) only when it has nothing else to send, so this grows
    /// while the worker is behind; when idle it stays under half of
    /// `wal_sender_timeout`.
    pub apply_lag_seconds: Option<f64>,
    /// `pg_stat_subscription_stats.apply_error_count` (PostgreSQL 15+).
    pub apply_error_count: Option<i64>,
    /// Errors of synchronization workers: `sync_error_count` (15-18), or
    /// every `sync_*error_count` column the version has (19 renamed it
    /// `sync_table_error_count` and counts sequences apart), summed.
    pub sync_error_count: Option<i64>,
    /// The conflict counters, by kind without the `confl_` prefix
    /// (`insert_exists`, `update_missing`, `delete_missing`, ...), where
    /// the server counts them (PostgreSQL 18+); `None` before.
    pub conflicts: Option<BTreeMap<String, i64>>,
    /// The subscription's OID: its table synchronization slots on the
    /// source are named `pg_<oid>_sync_<relid>_<system id>`.
    pub oid: u32,
}

impl SubscriptionLag {
    /// Every conflict counted so far, all kinds together.
    pub fn conflicts_total(&self) -> Option<i64> {
        self.conflicts.as_ref().map(|c| c.values().sum())
    }
}

// now() is the target's transaction start and latest_end_time the source's
// clock: a reading just after the start, or a little clock skew, would be
// negative; it counts as zero. relid IS NULL and no leader_pid pick the
// apply worker, not table-sync or (PostgreSQL 16+) parallel apply workers;
// leader_pid is read through to_jsonb so the query runs on 15 too. Every
// counter of pg_stat_subscription_stats is read through to_jsonb too, by
// pattern, never by a column name a later version may rename: the apply
// errors, the sync errors (19 renamed sync_error_count), and the conflict
// counters, every confl_* column the version has (18 added them, later
// versions add kinds).
/// The counters of a row `st` of `pg_stat_subscription_stats`, whatever
/// the version names its columns: apply errors, sync errors, then the
/// conflict kinds and their counts (two arrays). Public so a test can run
/// it over a row shaped as another version's.
pub const STATS_COUNTERS_SQL: &str = "\
       (to_jsonb(st) ->> 'apply_error_count')::bigint, \
       (SELECT sum(c.value::bigint)::bigint FROM jsonb_each_text(to_jsonb(st)) c \
             WHERE c.key LIKE 'sync\\_%error\\_count'), \
       ARRAY(SELECT c.key FROM jsonb_each_text(to_jsonb(st)) c \
             WHERE c.key LIKE 'confl\\_%' ORDER BY c.key), \
       ARRAY(SELECT c.value::bigint FROM jsonb_each_text(to_jsonb(st)) c \
             WHERE c.key LIKE 'confl\\_%' ORDER BY c.key) ";

static SUBSCRIPTIONS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT s.subname::text, s.subenabled, w.pid, \
                greatest(0, extract(epoch FROM now() - w.last_msg_receipt_time))::float8, \
                greatest(0, extract(epoch FROM now() - w.latest_end_time))::float8, \
                {STATS_COUNTERS_SQL}, s.oid \
         FROM pg_subscription s \
         JOIN pg_database d ON d.oid = s.subdbid AND d.datname = current_database() \
         LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL \
              AND to_jsonb(w) ->> 'leader_pid' IS NULL \
         LEFT JOIN pg_stat_subscription_stats st ON st.subid = s.oid \
         WHERE s.subname = ANY($1) ORDER BY 1"
    )
});

/// The counters [`STATS_COUNTERS_SQL`] reads, from a row of its columns
/// starting at `first`.
pub fn stats_counters(row: &tokio_postgres::Row, first: usize) -> StatsCounters {
    StatsCounters {
        apply_error_count: row.get(first),
        sync_error_count: row.get(first + 1),
        conflicts: conflicts(row.get(first + 2), row.get(first + 3)),
    }
}

/// What `pg_stat_subscription_stats` counts for one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsCounters {
    pub apply_error_count: Option<i64>,
    pub sync_error_count: Option<i64>,
    pub conflicts: Option<BTreeMap<String, i64>>,
}

/// The named subscriptions that exist on the target (absent ones are
/// simply not in the result).
pub async fn subscription_lags(client: &Client, names: &[&str]) -> Result<Vec<SubscriptionLag>> {
    let rows = client
        .query(SUBSCRIPTIONS_SQL.as_str(), &[&names])
        .await
        .map_err(|e| classify("read pg_stat_subscription", e))?;
    Ok(rows
        .iter()
        .map(|row| {
            let counters = stats_counters(row, 5);
            SubscriptionLag {
                subscription: row.get(0),
                enabled: row.get(1),
                apply_worker_pid: row.get(2),
                seconds_since_last_message: row.get(3),
                apply_lag_seconds: row.get(4),
                apply_error_count: counters.apply_error_count,
                sync_error_count: counters.sync_error_count,
                conflicts: counters.conflicts,
                oid: row.get(9),
            }
        })
        .collect())
}

/// The `confl_*` columns as kind → count; none means the version has no
/// conflict counters.
fn conflicts(keys: Vec<String>, values: Vec<i64>) -> Option<BTreeMap<String, i64>> {
    if keys.is_empty() {
        return None;
    }
    Some(
        keys.into_iter()
            .map(|k| k.strip_prefix("confl_").unwrap_or(&k).to_string())
            .zip(values)
            .collect(),
    )
}
