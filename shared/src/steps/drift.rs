//! The drift report: every table in scope, source against target, by
//! shape — columns with their types, nullability and defaults, the primary
//! key and the indexes. Differences are named, never fixed: a copy that
//! drifted is for its operator to judge (a pending schema change in
//! `clonesync.ddl_applied` usually says why).
//!
//! Reads only; running it twice gives the same report while nothing
//! changes.

use crate::error::Result;
use crate::pg::drift::{table_shapes, TableShape};
use crate::pipeline::Scope;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// One difference, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub table: String,
    /// `table`, `column <name>`, `primary key` or `index <name>`.
    pub what: String,
    /// As on the source; `None`: absent there.
    pub source: Option<String>,
    /// As on the target; `None`: absent there.
    pub target: Option<String>,
}

pub async fn run(source: &Client, target: &Client, scope: &Scope) -> Result<Vec<Difference>> {
    let (on_source, on_target) =
        tokio::try_join!(table_shapes(source, scope), table_shapes(target, scope))?;
    let mut differences = Vec::new();
    for (table, shape) in &on_source {
        match on_target.get(table) {
            None => differences.push(Difference {
                table: table.to_string(),
                what: "table".into(),
                source: Some("present".into()),
                target: None,
            }),
            Some(other) => compare(&table.to_string(), shape, other, &mut differences),
        }
    }
    for table in on_target.keys().filter(|t| !on_source.contains_key(*t)) {
        differences.push(Difference {
            table: table.to_string(),
            what: "table".into(),
            source: None,
            target: Some("present".into()),
        });
    }
    Ok(differences)
}

fn describe(column: &crate::pg::drift::ColumnShape) -> String {
    format!(
        "{}{}{}",
        column.data_type,
        if column.not_null { " NOT NULL" } else { "" },
        column
            .default
            .as_ref()
            .map(|d| format!(" DEFAULT {d}"))
            .unwrap_or_default()
    )
}

fn compare(table: &str, source: &TableShape, target: &TableShape, out: &mut Vec<Difference>) {
    let mut push = |what: String, s: Option<String>, t: Option<String>| {
        if s != t {
            out.push(Difference {
                table: table.to_string(),
                what,
                source: s,
                target: t,
            });
        }
    };
    for column in &source.columns {
        let other = target.columns.iter().find(|c| c.name == column.name);
        push(
            format!("column {}", column.name),
            Some(describe(column)),
            other.map(describe),
        );
    }
    for column in target
        .columns
        .iter()
        .filter(|c| !source.columns.iter().any(|s| s.name == c.name))
    {
        push(
            format!("column {}", column.name),
            None,
            Some(describe(column)),
        );
    }
    let order = |shape: &TableShape| {
        shape
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    if order(source).len() == order(target).len()
        && order(source).iter().all(|c| order(target).contains(c))
        && order(source) != order(target)
    {
        push(
            "column order".into(),
            Some(order(source).join(", ")),
            Some(order(target).join(", ")),
        );
    }
    push(
        "primary key".into(),
        source.primary_key.clone(),
        target.primary_key.clone(),
    );
    for (name, def) in &source.indexes {
        push(
            format!("index {name}"),
            Some(def.clone()),
            target.indexes.get(name).cloned(),
        );
    }
    for (name, def) in target
        .indexes
        .iter()
        .filter(|(n, _)| !source.indexes.contains_key(*n))
    {
        push(format!("index {name}"), None, Some(def.clone()));
    }
}
