//! Publications.

use crate::error::Result;
use crate::pg::sqlstate::{classify, code_of, DUPLICATE_OBJECT};
use crate::pg::{quote, PgName, TableName};
use crate::pipeline::Scope;
use std::collections::BTreeSet;
use tokio_postgres::Client;

/// A publication's comment as clonesync reads it: only where the
/// publication's owner is a role clonesync may run as (a superuser, a
/// member of Aurora's `rds_superuser`, or this session's login). Anyone
/// with CREATE on the database may make a publication and comment it, and
/// a comment copied from a pipeline's would otherwise claim that
/// pipeline's slot or keep its capture installed after teardown.
const TRUSTED_COMMENT: &str = "CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = pubowner        AND (r.rolsuper OR r.rolname = current_user             OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles s WHERE s.rolname = 'rds_superuser'                        AND pg_catalog.pg_has_role(r.oid, s.oid, 'MEMBER'))))      THEN pg_catalog.obj_description(oid, 'pg_publication') END";

/// What a publication publishes, read from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationInfo {
    pub all_tables: bool,
    /// insert, update, delete and truncate all published.
    pub publishes_all_actions: bool,
    /// Tables named explicitly (`FOR TABLE`).
    pub tables: BTreeSet<TableName>,
    /// Schemas named (`FOR TABLES IN SCHEMA`).
    pub schemas: BTreeSet<PgName>,
    /// Some explicit table carries a row filter or a column list.
    pub filtered: bool,
    /// Its comment, where its owner is trusted ([`TRUSTED_COMMENT`]).
    pub comment: Option<String>,
}

impl PublicationInfo {
    /// The tables of a table-list `scope` (and `extra`) this table-list
    /// publication lacks, when it publishes nothing else: the input grew
    /// the list. `None` when it is not such a case.
    pub fn missing_from(&self, scope: &Scope, extra: Option<&TableName>) -> Option<Vec<TableName>> {
        let Scope::Tables { tables } = scope else {
            return None;
        };
        if self.all_tables
            || !self.schemas.is_empty()
            || self.filtered
            || !self.publishes_all_actions
        {
            return None;
        }
        let wanted: BTreeSet<TableName> = tables.iter().cloned().chain(extra.cloned()).collect();
        if !self.tables.is_subset(&wanted) {
            return None;
        }
        let missing: Vec<TableName> = wanted.difference(&self.tables).cloned().collect();
        (!missing.is_empty()).then_some(missing)
    }

    /// Why this publication does not publish exactly `scope` (and the
    /// `extra` table besides, the schema change queue), if it doesn't.
    pub fn mismatch(&self, scope: &Scope, extra: Option<&TableName>) -> Option<String> {
        if !self.publishes_all_actions {
            return Some("it does not publish all of insert, update, delete, truncate".into());
        }
        if self.filtered {
            return Some("it has a row filter or column list".into());
        }
        let describe = |p: &PublicationInfo| {
            if p.all_tables {
                "all tables".to_string()
            } else {
                format!(
                    "{} table(s) and {} schema(s)",
                    p.tables.len(),
                    p.schemas.len()
                )
            }
        };
        let extra_tables: BTreeSet<TableName> = extra.into_iter().cloned().collect();
        let matches = match scope {
            Scope::AllTables => self.all_tables,
            Scope::Schemas { schemas } => {
                !self.all_tables
                    && self.tables == extra_tables
                    && self.schemas == schemas.iter().cloned().collect::<BTreeSet<_>>()
            }
            Scope::Tables { tables } => {
                !self.all_tables
                    && self.schemas.is_empty()
                    && self.tables
                        == tables
                            .iter()
                            .cloned()
                            .chain(extra_tables.iter().cloned())
                            .collect::<BTreeSet<_>>()
            }
        };
        (!matches).then(|| match extra {
            Some(queue) if !self.all_tables && !self.tables.contains(queue) => format!(
                "it publishes {} and not {} (schema changes are on: add that table to it, or set pipeline.schema_changes \"off\")",
                describe(self),
                queue
            ),
            _ => format!(
                "it publishes {} instead of the requested set",
                describe(self)
            ),
        })
    }
}

pub async fn publication_info(client: &Client, name: &PgName) -> Result<Option<PublicationInfo>> {
    let op = "read publication";
    let Some(row) = client
        .query_opt(
            &format!(
                "SELECT oid, puballtables, pubinsert AND pubupdate AND pubdelete AND pubtruncate, \
                        {TRUSTED_COMMENT} \
                 FROM pg_publication WHERE pubname = $1"
            ),
            &[&name.as_str()],
        )
        .await
        .map_err(|e| classify(op, e))?
    else {
        return Ok(None);
    };
    let oid: u32 = row.get(0);
    let tables = client
        .query(
            "SELECT n.nspname::text, c.relname::text, (pr.prqual IS NOT NULL OR pr.prattrs IS NOT NULL) \
             FROM pg_publication_rel pr JOIN pg_class c ON c.oid = pr.prrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE pr.prpubid = $1",
            &[&oid],
        )
        .await
        .map_err(|e| classify(op, e))?;
    let schemas = client
        .query(
            "SELECT n.nspname::text FROM pg_publication_namespace pn \
             JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE pn.pnpubid = $1",
            &[&oid],
        )
        .await
        .map_err(|e| classify(op, e))?;
    let mut info = PublicationInfo {
        all_tables: row.get(1),
        publishes_all_actions: row.get(2),
        tables: BTreeSet::new(),
        schemas: BTreeSet::new(),
        filtered: tables.iter().any(|r| r.get::<_, bool>(2)),
        comment: row.get(3),
    };
    for r in &tables {
        // Names read from the catalog always fit; a failure here would be a
        // catalog we do not understand, reported as a mismatch by omission.
        if let Ok(t) = TableName::new(r.get(0), r.get(1)) {
            info.tables.insert(t);
        }
    }
    for r in &schemas {
        if let Ok(s) = PgName::new(r.get::<_, String>(0)) {
            info.schemas.insert(s);
        }
    }
    Ok(Some(info))
}

/// Create the publication and mark it with `comment` in one transaction, so
/// a publication without the mark was never ours. Returns false when one of
/// that name already existed (created concurrently).
pub async fn create_publication(
    client: &mut Client,
    name: &PgName,
    scope: &Scope,
    extra: Option<&TableName>,
    comment: &str,
) -> Result<bool> {
    let op = "create publication";
    let tx = client.transaction().await.map_err(|e| classify(op, e))?;
    let ddl = format!(
        "CREATE PUBLICATION {} {}; COMMENT ON PUBLICATION {} IS {}",
        name.quoted(),
        publication_clause(scope, extra),
        name.quoted(),
        quote::literal(comment)
    );
    match tx.batch_execute(&ddl).await {
        Ok(()) => {}
        Err(e) if code_of(&e) == Some(DUPLICATE_OBJECT) => return Ok(false),
        Err(e) => return Err(classify(op, e)),
    }
    tx.commit().await.map_err(|e| classify(op, e))?;
    Ok(true)
}

/// The `FOR ...` clause of `CREATE PUBLICATION`, every name quoted;
/// `extra` is one more table (`FOR ALL TABLES` has it anyway).
pub fn publication_clause(scope: &Scope, extra: Option<&TableName>) -> String {
    let list = |names: Vec<String>| names.join(", ");
    let extra: Vec<String> = extra.iter().map(|t| t.quoted()).collect();
    match scope {
        Scope::AllTables => "FOR ALL TABLES".to_string(),
        Scope::Schemas { schemas } => {
            let mut clause = format!(
                "FOR TABLES IN SCHEMA {}",
                list(schemas.iter().map(PgName::quoted).collect())
            );
            if !extra.is_empty() {
                clause.push_str(&format!(", TABLE {}", list(extra)));
            }
            clause
        }
        Scope::Tables { tables } => format!(
            "FOR TABLE {}",
            list(tables.iter().map(TableName::quoted).chain(extra).collect())
        ),
    }
}

/// `ALTER PUBLICATION ... ADD TABLE`: a table-list scope grown by the
/// input.
pub async fn add_tables(client: &Client, name: &PgName, tables: &[TableName]) -> Result<()> {
    client
        .batch_execute(&format!(
            "ALTER PUBLICATION {} ADD TABLE {}",
            name.quoted(),
            tables
                .iter()
                .map(TableName::quoted)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .await
        .map_err(|e| classify("add tables to the publication", e))
}

/// Publications of the current database whose (trusted) comment starts
/// with `mark_prefix` (name, comment).
pub async fn marked_publications(
    client: &Client,
    mark_prefix: &str,
) -> Result<Vec<(String, String)>> {
    let rows = client
        .query(
            &format!(
                "SELECT name, comment FROM (SELECT pubname::text AS name, {TRUSTED_COMMENT} AS comment \
                 FROM pg_publication) p WHERE starts_with(coalesce(comment, ''), $1) ORDER BY 1"
            ),
            &[&mark_prefix],
        )
        .await
        .map_err(|e| classify("list marked publications", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Drop the publication only if its (trusted) comment is `mark` (the
/// pipeline's ownership mark): a user's publication that setup reused
/// under the pipeline's name stays, and so does one a user marked. Returns whether one was dropped.
pub async fn drop_marked_publication(client: &Client, name: &PgName, mark: &str) -> Result<bool> {
    let marked = client
        .query_opt(
            &format!("SELECT 1 FROM pg_publication WHERE pubname = $1 AND {TRUSTED_COMMENT} = $2"),
            &[&name.as_str(), &mark],
        )
        .await
        .map_err(|e| classify("read publication", e))?
        .is_some();
    if !marked {
        return Ok(false);
    }
    drop_publication_if_exists(client, name).await
}

/// Returns whether a publication was dropped.
pub async fn drop_publication_if_exists(client: &Client, name: &PgName) -> Result<bool> {
    let existed = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&name.as_str()],
        )
        .await
        .map_err(|e| classify("read publication", e))?
        .is_some();
    client
        .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", name.quoted()))
        .await
        .map_err(|e| classify("drop publication", e))?;
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_quote_every_name() {
        let scope = Scope::tables(vec![TableName::new("Sales Schema", "a\"b").unwrap()]).unwrap();
        assert_eq!(
            publication_clause(&scope, None),
            r#"FOR TABLE "Sales Schema"."a""b""#
        );
        let queue = TableName::new("clonesync", "ddl_queue").unwrap();
        assert_eq!(
            publication_clause(&scope, Some(&queue)),
            r#"FOR TABLE "Sales Schema"."a""b", "clonesync"."ddl_queue""#
        );
        let scope = Scope::schemas(vec![PgName::new("s;1").unwrap()]).unwrap();
        assert_eq!(
            publication_clause(&scope, None),
            r#"FOR TABLES IN SCHEMA "s;1""#
        );
        assert_eq!(
            publication_clause(&scope, Some(&queue)),
            r#"FOR TABLES IN SCHEMA "s;1", TABLE "clonesync"."ddl_queue""#
        );
        assert_eq!(
            publication_clause(&Scope::AllTables, Some(&queue)),
            "FOR ALL TABLES"
        );
    }
}
