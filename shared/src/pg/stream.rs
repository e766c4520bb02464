//! What a pipeline's slot will send next, read without consuming it: the
//! relations (tables, with their columns) its pending transactions name.
//!
//! Apply stops on the rows of a table the copy does not have ("logical
//! replication target relation ... does not exist"). Usually the schema
//! change queue says how the table was made; a table made by a command no
//! event trigger sees (`EXPLAIN ANALYZE CREATE TABLE AS`) and dropped since
//! is known only to the stream itself. `pg_logical_slot_peek_binary_changes`
//! decodes the slot's pending WAL with pgoutput, as the walsender would,
//! and leaves the slot where it was; it can only while no walsender holds
//! the slot, which is the case between two attempts of a stopped apply
//! worker. The messages are pgoutput's logical replication protocol
//! (PostgreSQL documentation, "Logical Replication Message Formats"):
//! Begin (`B`: final LSN, commit time, xid) and Relation (`R`: OID,
//! namespace, name, replica identity, columns with flags, name, type OID,
//! type modifier); the others are skipped.

use crate::error::Result;
use crate::pg::quote;
use crate::pg::sqlstate::{classify, code_of, OBJECT_IN_USE};
use crate::pg::{Lsn, TableName};
use postgres_types::PgLsn;
use tokio_postgres::Client;

/// A table a pending transaction of the stream writes, as the stream
/// describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRelation {
    pub table: TableName,
    /// The column names, in the stream's order.
    pub columns: Vec<String>,
    /// The transaction's commit position (its Begin's final LSN).
    pub final_lsn: Lsn,
}

/// The relations the first `transactions` pending transactions of `slot`
/// name, each once (its first appearance), in stream order; `None` when
/// a walsender holds the slot (apply is running: nothing to learn).
pub async fn pending_relations(
    source: &Client,
    slot: &str,
    publications: &[&str],
    transactions: i32,
) -> Result<Option<Vec<StreamRelation>>> {
    let names = publications
        .iter()
        .map(|p| quote::ident(p))
        .collect::<Vec<_>>()
        .join(",");
    let rows = match source
        .query(
            "SELECT data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, NULL, $2, \
                 'proto_version', '1', 'publication_names', $3)",
            &[&slot, &transactions, &names],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) if code_of(&e) == Some(OBJECT_IN_USE) => return Ok(None),
        Err(e) => return Err(classify("read the slot's pending changes", e)),
    };
    let mut relations: Vec<StreamRelation> = Vec::new();
    let mut final_lsn = Lsn::from(0u64);
    for row in rows {
        let data: Vec<u8> = row.get(0);
        match parse(&data) {
            Some(Message::Begin(lsn)) => final_lsn = lsn,
            Some(Message::Relation(table, columns))
                if !relations.iter().any(|r| r.table == table) =>
            {
                relations.push(StreamRelation {
                    table,
                    columns,
                    final_lsn,
                });
            }
            _ => {}
        }
    }
    Ok(Some(relations))
}

/// Whether the copy's subscription is enabled, has no apply worker right
/// now and has counted apply errors: the state between two attempts of a
/// worker that stops on a change.
pub async fn apply_stopped_on_errors(target: &Client, subscription: &str) -> Result<bool> {
    let row = target
        .query_one(
            "SELECT s.subenabled \
                AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_subscription w \
                                 WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL) \
                AND coalesce((SELECT st.apply_error_count FROM pg_catalog.pg_stat_subscription_stats st \
                               WHERE st.subid = s.oid), 0) > 0 \
             FROM pg_catalog.pg_subscription s \
             WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
             UNION ALL SELECT false LIMIT 1",
            &[&subscription],
        )
        .await
        .map_err(|e| classify("read whether apply is stopped", e))?;
    Ok(row.get(0))
}

/// Where the copy's subscription has applied up to (its origin's remote
/// position); `None` before it has applied anything.
pub async fn applied_up_to(target: &Client, subscription: &str) -> Result<Option<Lsn>> {
    let row = target
        .query_opt(
            "SELECT o.remote_lsn FROM pg_catalog.pg_replication_origin_status o \
             JOIN pg_catalog.pg_subscription s ON o.external_id = 'pg_' || s.oid \
             WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
            &[&subscription],
        )
        .await
        .map_err(|e| classify("read the subscription's applied position", e))?;
    Ok(row
        .and_then(|r| r.get::<_, Option<PgLsn>>(0))
        .map(Lsn::from))
}

enum Message {
    Begin(Lsn),
    Relation(TableName, Vec<String>),
}

/// One pgoutput message; `None` for the kinds not needed (or a message
/// that does not parse, which is then ignored: the peek only helps).
fn parse(data: &[u8]) -> Option<Message> {
    let mut reader = Reader { data, at: 1 };
    match data.first()? {
        b'B' => Some(Message::Begin(Lsn::from(reader.u64()?))),
        b'R' => {
            let _oid = reader.u32()?;
            let namespace = reader.string()?;
            let name = reader.string()?;
            let _identity = reader.u8()?;
            let count = reader.u16()?;
            let mut columns = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                let _flags = reader.u8()?;
                columns.push(reader.string()?);
                let _type = reader.u32()?;
                let _typmod = reader.u32()?;
            }
            // An empty namespace is pg_catalog's, never a user table's.
            let schema = if namespace.is_empty() {
                "pg_catalog".to_string()
            } else {
                namespace
            };
            Some(Message::Relation(
                TableName::new(&schema, &name).ok()?,
                columns,
            ))
        }
        _ => None,
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let bytes = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A NUL-terminated string.
    fn string(&mut self) -> Option<String> {
        let rest = self.data.get(self.at..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        let text = String::from_utf8(rest[..end].to_vec()).ok()?;
        self.at += end + 1;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation_message(namespace: &str, name: &str, columns: &[&str]) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(16_401u32.to_be_bytes());
        for s in [namespace, name] {
            m.extend(s.as_bytes());
            m.push(0);
        }
        m.push(b'd');
        m.extend((columns.len() as u16).to_be_bytes());
        for c in columns {
            m.push(0);
            m.extend(c.as_bytes());
            m.push(0);
            m.extend(23u32.to_be_bytes());
            m.extend(u32::MAX.to_be_bytes());
        }
        m
    }

    #[test]
    fn relation_and_begin_messages_parse_and_a_short_one_is_ignored() {
        let Some(Message::Relation(table, columns)) = parse(&relation_message(
            "selinto schema",
            "tbl_withdata2",
            &["a", "B c"],
        )) else {
            panic!("not a relation");
        };
        assert_eq!(
            table,
            TableName::new("selinto schema", "tbl_withdata2").unwrap()
        );
        assert_eq!(columns, ["a", "B c"]);
        let mut begin = vec![b'B'];
        begin.extend(0x0000_0001_0000_0028u64.to_be_bytes());
        begin.extend([0u8; 12]);
        assert!(
            matches!(parse(&begin), Some(Message::Begin(lsn)) if lsn.as_u64() == 0x1_0000_0028)
        );
        let whole = relation_message("s", "t", &["a"]);
        assert!(parse(&whole[..whole.len() - 3]).is_none(), "truncated");
        assert!(parse(b"I\0\0").is_none(), "other kinds are skipped");
        assert!(parse(&[]).is_none());
    }
}
