//! Facts about a server that preflight and the steps need.

use crate::error::Result;
use crate::pg::sqlstate::classify;
use std::collections::HashMap;
use tokio_postgres::Client;

/// Settings and usage counts, read in one round trip each.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    pub version_num: i32,
    pub wal_level: String,
    /// `rds.logical_replication`, where the server has it (Aurora, RDS).
    pub rds_logical_replication: Option<String>,
    pub max_replication_slots: i64,
    pub max_wal_senders: i64,
    pub max_worker_processes: i64,
    pub max_logical_replication_workers: i64,
    pub slots_used: i64,
    pub wal_senders_used: i64,
    pub subscriptions: i64,
    pub origins: i64,
    pub in_recovery: bool,
    /// `max_active_replication_origins` (PostgreSQL 18+; before, origins
    /// are bounded by `max_replication_slots`).
    pub max_active_replication_origins: Option<i64>,
}

pub async fn facts(client: &Client) -> Result<ServerFacts> {
    let op = "read server settings";
    let rows = client
        .query(
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1)",
            &[&vec![
                "server_version_num",
                "wal_level",
                "rds.logical_replication",
                "max_replication_slots",
                "max_wal_senders",
                "max_worker_processes",
                "max_logical_replication_workers",
                "max_active_replication_origins",
            ]],
        )
        .await
        .map_err(|e| classify(op, e))?;
    let settings: HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let number =
        |name: &str| -> i64 { settings.get(name).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let usage = client
        .query_one(
            "SELECT (SELECT count(*) FROM pg_replication_slots), \
                    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'), \
                    (SELECT count(*) FROM pg_subscription), \
                    (SELECT count(*) FROM pg_replication_origin), \
                    pg_is_in_recovery()",
            &[],
        )
        .await
        .map_err(|e| classify(op, e))?;
    Ok(ServerFacts {
        version_num: number("server_version_num") as i32,
        wal_level: settings.get("wal_level").cloned().unwrap_or_default(),
        rds_logical_replication: settings.get("rds.logical_replication").cloned(),
        max_replication_slots: number("max_replication_slots"),
        max_wal_senders: number("max_wal_senders"),
        max_worker_processes: number("max_worker_processes"),
        max_logical_replication_workers: number("max_logical_replication_workers"),
        slots_used: usage.get(0),
        wal_senders_used: usage.get(1),
        subscriptions: usage.get(2),
        origins: usage.get(3),
        in_recovery: usage.get(4),
        max_active_replication_origins: settings
            .get("max_active_replication_origins")
            .and_then(|v| v.parse().ok()),
    })
}

/// The database this session is connected to.
pub async fn current_database(client: &Client) -> Result<String> {
    let row = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(|e| classify("read current database", e))?;
    Ok(row.get(0))
}

/// Which of `names` are schemas of this database.
pub async fn existing_schemas(client: &Client, names: &[String]) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)",
            &[&names],
        )
        .await
        .map_err(|e| classify("read schemas", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether the server is still recovering (a standby, or a clone before
/// its promotion).
pub async fn in_recovery(client: &Client) -> Result<bool> {
    let row = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .map_err(|e| classify("read recovery state", e))?;
    Ok(row.get(0))
}

/// Whether the session's login may create `FOR ALL TABLES` / `FOR TABLES
/// IN SCHEMA` publications and subscriptions: a superuser, or on RDS and
/// Aurora a member of `rds_superuser`.
pub async fn login_is_superuser(client: &Client) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT r.rolsuper OR EXISTS (SELECT 1 FROM pg_roles s \
                 WHERE s.rolname = 'rds_superuser' AND pg_has_role(r.oid, s.oid, 'MEMBER')) \
             FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| classify("read the login's privileges", e))?;
    Ok(row.get(0))
}

/// Unlogged tables (which logical replication cannot carry: their changes
/// are not in the WAL) among those in the given schemas, or in every
/// schema (`None`), as `schema.name`. The capture's own scratch table in
/// `clonesync` is not replicated on purpose.
pub async fn unlogged_tables(client: &Client, schemas: Option<&[String]>) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'clonesync') \
               AND ($1::text[] IS NULL OR n.nspname = ANY($1)) ORDER BY 1",
            &[&schemas.map(<[String]>::to_vec)],
        )
        .await
        .map_err(|e| classify("read unlogged tables", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Those of the tables `listed` (`schema.name`, unquoted, in `schemas`)
/// that are unlogged, as [`unlogged_tables`] names them.
pub async fn unlogged_tables_named(
    client: &Client,
    schemas: &[String],
    listed: &[String],
) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'u' \
               AND n.nspname = ANY($1) AND n.nspname || '.' || c.relname = ANY($2) ORDER BY 1",
            &[&schemas, &listed],
        )
        .await
        .map_err(|e| classify("read unlogged tables", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A table in scope that logical replication cannot update or delete in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableIdentity {
    pub schema: String,
    pub name: String,
    /// `d` default (primary key), `n` nothing, `f` full, `i` index.
    pub replica_identity: char,
    pub has_primary_key: bool,
    /// On PostgreSQL 18+: a generated column in the columns that identify
    /// a row (the primary key, the identity index, or every column for
    /// `FULL`, which a table without a key gets from clonesync). 18
    /// refuses UPDATE and DELETE on a table whose identity holds a
    /// generated column a publication publishing them does not publish
    /// (virtual ones never are; clonesync's publications publish no
    /// stored ones, since the copy's columns are generated too).
    pub generated_in_identity: Option<String>,
}

impl TableIdentity {
    /// Whether UPDATE and DELETE can be replicated.
    pub fn is_replicable(&self) -> bool {
        match self.replica_identity {
            'd' => self.has_primary_key,
            'f' | 'i' => true,
            _ => false,
        }
    }

    /// Why UPDATE and DELETE on this table fail on the source while a
    /// publication of clonesync covers it; `None`: they work.
    pub fn write_failure(&self) -> Option<String> {
        if let Some(column) = &self.generated_in_identity {
            return Some(format!(
                "its replica identity holds generated column {column:?}, which the publication does not publish \
                 (PostgreSQL 18 refuses UPDATE and DELETE then)"
            ));
        }
        (!self.is_replicable()).then(|| match self.replica_identity {
            'n' => "REPLICA IDENTITY NOTHING".to_string(),
            _ => "neither a primary key nor a replica identity".to_string(),
        })
    }

    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// The first generated column among those that identify a row of table
/// `c` (its primary key, its identity index, or all of them for `FULL`
/// and for a table without a key, which clonesync gives `FULL`); NULL
/// before PostgreSQL 18, which does not check it.
const GENERATED_IN_IDENTITY: &str = "CASE WHEN pg_catalog.current_setting('server_version_num')::int >= 180000 THEN \
       (SELECT a.attname::text FROM pg_attribute a \
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> '' \
           AND (c.relreplident = 'f' \
                OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index k WHERE k.indrelid = c.oid AND k.indisprimary)) \
                OR EXISTS (SELECT 1 FROM pg_index k WHERE k.indrelid = c.oid \
                            AND ((c.relreplident = 'd' AND k.indisprimary) OR (c.relreplident = 'i' AND k.indisreplident)) \
                            AND a.attnum = ANY (k.indkey::int2[]))) \
         ORDER BY a.attnum LIMIT 1) END";

fn identity_of(r: &tokio_postgres::Row) -> TableIdentity {
    TableIdentity {
        schema: r.get(0),
        name: r.get(1),
        replica_identity: r.get::<_, String>(2).chars().next().unwrap_or('d'),
        has_primary_key: r.get(3),
        generated_in_identity: r.get(4),
    }
}

/// The tables `publications` publish (leaf tables, as
/// `pg_publication_tables` lists them: the ones UPDATE and DELETE run
/// on) whose UPDATE and DELETE fail on the source, each with why.
pub async fn unwritable_published_tables(
    client: &Client,
    publications: &[String],
) -> Result<Vec<(String, String)>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relreplident::text, \
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), \
                {GENERATED_IN_IDENTITY} \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE EXISTS (SELECT 1 FROM pg_publication_tables pt \
                        WHERE pt.pubname = ANY($1) AND pt.schemaname = n.nspname AND pt.tablename = c.relname) \
         ORDER BY 1, 2"
    );
    let rows = client
        .query(&sql, &[&publications])
        .await
        .map_err(|e| classify("read the replica identities of published tables", e))?;
    Ok(rows
        .iter()
        .map(identity_of)
        .filter_map(|t| t.write_failure().map(|why| (t.qualified(), why)))
        .collect())
}

/// The filter `is_publishable_class()` applies in PostgreSQL: permanent
/// ordinary and partitioned tables (leaf partitions included) outside the
/// system schemas. A partitioned table's primary key is its partitions'.
const PUBLISHABLE: &str = "c.relkind IN ('r', 'p') AND c.relpersistence = 'p' \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND c.oid >= 16384";

/// The tables a query keeps, by its parameters: `$1` schemas (NULL: any),
/// `$2` whether tables are named, `$3` and `$4` their schemas and names.
const IN_SCOPE: &str = "AND ($1::text[] IS NULL OR n.nspname = ANY($1)) \
     AND ($2 = false OR (n.nspname, c.relname) IN (SELECT * FROM unnest($3::text[], $4::text[])))";

/// Replica identity of tables: all publishable ones (`schemas` and `tables`
/// both None), those in the given schemas, or the named ones (names not
/// found are simply absent from the result).
pub async fn table_identities(
    client: &Client,
    schemas: Option<&[String]>,
    tables: Option<&[(String, String)]>,
) -> Result<Vec<TableIdentity>> {
    let (schema_filter, names, table_schemas): (Option<Vec<String>>, Vec<String>, Vec<String>) =
        match tables {
            Some(list) => (
                None,
                list.iter().map(|(_, t)| t.clone()).collect(),
                list.iter().map(|(s, _)| s.clone()).collect(),
            ),
            None => (schemas.map(<[String]>::to_vec), vec![], vec![]),
        };
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, c.relreplident::text, \
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), \
                {GENERATED_IN_IDENTITY} \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {PUBLISHABLE} \
           {IN_SCOPE} \
         ORDER BY 1, 2"
    );
    let rows = client
        .query(
            &sql,
            &[&schema_filter, &tables.is_some(), &table_schemas, &names],
        )
        .await
        .map_err(|e| classify("read replica identities", e))?;
    Ok(rows.iter().map(identity_of).collect())
}

/// The tables holding rows in scope (plain tables and leaf partitions;
/// a partitioned table's rows are its partitions', and those are what
/// `pg_publication_tables` lists) that none of `publications` publishes,
/// outside clonesync's own schema. Scope as [`table_identities`].
pub async fn tables_not_published(
    client: &Client,
    schemas: Option<&[String]>,
    tables: Option<&[(String, String)]>,
    publications: &[String],
) -> Result<Vec<(String, String)>> {
    let (schema_filter, names, table_schemas): (Option<Vec<String>>, Vec<String>, Vec<String>) =
        match tables {
            Some(list) => (
                None,
                list.iter().map(|(_, t)| t.clone()).collect(),
                list.iter().map(|(s, _)| s.clone()).collect(),
            ),
            None => (schemas.map(<[String]>::to_vec), vec![], vec![]),
        };
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {PUBLISHABLE} AND c.relkind = 'r' AND n.nspname <> 'clonesync' \
           {IN_SCOPE} \
           AND NOT EXISTS (SELECT 1 FROM pg_publication_tables pt \
                            WHERE pt.pubname = ANY($5) AND pt.schemaname = n.nspname AND pt.tablename = c.relname) \
         ORDER BY 1, 2"
    );
    let rows = client
        .query(
            &sql,
            &[
                &schema_filter,
                &tables.is_some(),
                &table_schemas,
                &names,
                &publications,
            ],
        )
        .await
        .map_err(|e| classify("read tables no publication has", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A database of the cluster, as `source.databases` needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    pub name: String,
    pub allows_connections: bool,
    pub is_template: bool,
    /// The login holds CONNECT on it.
    pub may_connect: bool,
}

/// Every database of the cluster, by name.
pub async fn databases(client: &Client) -> Result<Vec<DatabaseFacts>> {
    let rows = client
        .query(
            "SELECT datname::text, datallowconn, datistemplate, \
                    has_database_privilege(oid, 'CONNECT') \
             FROM pg_database ORDER BY datname",
            &[],
        )
        .await
        .map_err(|e| classify("list databases", e))?;
    Ok(rows
        .iter()
        .map(|r| DatabaseFacts {
            name: r.get(0),
            allows_connections: r.get(1),
            is_template: r.get(2),
            may_connect: r.get(3),
        })
        .collect())
}

/// The tables a scope publishes, with their size in bytes (a partitioned
/// table with all its partitions, since its partitions are published
/// with it and must stay in one subscription): the tables to split into
/// apply groups. Partitions are not listed on their own unless named.
pub async fn tables_with_size(
    client: &Client,
    scope: &crate::pipeline::Scope,
) -> Result<Vec<(super::TableName, i64)>> {
    use crate::pipeline::Scope;
    // (schemas to filter by, tables named)
    type Filter = (Option<Vec<String>>, Option<Vec<(String, String)>>);
    let (schemas, named): Filter = match scope {
        Scope::AllTables => (None, None),
        Scope::Schemas { schemas } => (
            Some(schemas.iter().map(|s| s.as_str().to_string()).collect()),
            None,
        ),
        Scope::Tables { tables } => (
            None,
            Some(
                tables
                    .iter()
                    .map(|t| (t.schema.as_str().to_string(), t.name.as_str().to_string()))
                    .collect(),
            ),
        ),
    };
    let (table_schemas, table_names): (Vec<String>, Vec<String>) =
        named.clone().unwrap_or_default().into_iter().unzip();
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text, \
                CASE WHEN c.relkind = 'p' \
                     THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::bigint \
                             FROM pg_partition_tree(c.oid) t) \
                     ELSE pg_total_relation_size(c.oid) END \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {PUBLISHABLE} \
           AND ($2 OR NOT c.relispartition) \
           {IN_SCOPE} \
         ORDER BY 1, 2"
    );
    let rows = client
        .query(
            &sql,
            &[&schemas, &named.is_some(), &table_schemas, &table_names],
        )
        .await
        .map_err(|e| classify("read table sizes", e))?;
    let mut tables = Vec::with_capacity(rows.len());
    for r in &rows {
        tables.push((
            super::TableName::new(r.get(0), r.get(1))?,
            r.get::<_, i64>(2),
        ));
    }
    Ok(tables)
}

/// What decides how long an unused logical slot lives and how much WAL it
/// may hold, read where the version has it (absent: `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotSettings {
    /// `max_slot_wal_keep_size` in MB; -1 is unlimited.
    pub max_slot_wal_keep_size_mb: Option<i64>,
    /// `idle_replication_slot_timeout` in seconds (PostgreSQL 18+); 0 is
    /// off.
    pub idle_replication_slot_timeout_s: Option<i64>,
    /// The source's average WAL rate since its statistics were reset
    /// (`pg_stat_wal`), bytes per second.
    pub wal_bytes_per_second: Option<f64>,
}

pub async fn slot_settings(client: &Client) -> Result<SlotSettings> {
    let op = "read slot settings";
    let rows = client
        .query(
            // pg_settings reports both in their base units (MB, s).
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1)",
            &[&vec![
                "max_slot_wal_keep_size",
                "idle_replication_slot_timeout",
            ]],
        )
        .await
        .map_err(|e| classify(op, e))?;
    let settings: HashMap<String, i64> = rows
        .iter()
        .filter_map(|r| Some((r.get(0), r.get::<_, String>(1).parse().ok()?)))
        .collect();
    // The view may be absent or unreadable on a managed server; the rate
    // is only a hint, so any failure reads as unknown.
    let rate = client
        .query_opt(
            "SELECT wal_bytes::float8 / nullif(extract(epoch FROM now() - stats_reset), 0)::float8 \
             FROM pg_stat_wal",
            &[],
        )
        .await
        .ok()
        .flatten()
        .and_then(|row| row.get::<_, Option<f64>>(0));
    Ok(SlotSettings {
        max_slot_wal_keep_size_mb: settings.get("max_slot_wal_keep_size").copied(),
        idle_replication_slot_timeout_s: settings.get("idle_replication_slot_timeout").copied(),
        wal_bytes_per_second: rate,
    })
}
