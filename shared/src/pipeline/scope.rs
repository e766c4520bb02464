//! Which tables a pipeline replicates.
//!
//! A [`Scope`] is valid by construction: its lists are [`NameList`]s, which
//! refuse to be empty or to hold a name twice, whether made in code
//! ([`Scope::schemas`], [`Scope::tables`]) or read from JSON. Steps never
//! re-check it.

use crate::error::{Error, Result};
use crate::pg::{PgName, TableName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::Deref;

/// What the publication covers, as the three forms `CREATE PUBLICATION`
/// offers: `FOR ALL TABLES`, `FOR TABLES IN SCHEMA ...`, `FOR TABLE ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    AllTables,
    Schemas { schemas: NameList<PgName> },
    Tables { tables: NameList<TableName> },
}

impl Scope {
    /// `FOR TABLES IN SCHEMA` these schemas.
    pub fn schemas(schemas: Vec<PgName>) -> Result<Scope> {
        Ok(Scope::Schemas {
            schemas: NameList::new(schemas)?,
        })
    }

    /// `FOR TABLE` these tables.
    pub fn tables(tables: Vec<TableName>) -> Result<Scope> {
        Ok(Scope::Tables {
            tables: NameList::new(tables)?,
        })
    }

    /// Whether the publication this scope makes covers `table` (by name:
    /// a table that does not exist yet or any more is judged as if it did).
    pub fn publishes(&self, table: &TableName) -> bool {
        match self {
            Scope::AllTables => true,
            Scope::Schemas { schemas } => {
                schemas.iter().any(|s| s.as_str() == table.schema.as_str())
            }
            Scope::Tables { tables } => tables.contains(table),
        }
    }
}

/// A non-empty list of names without duplicates, in the order given: an
/// empty list or a repeated name would make the publication differ from
/// what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct NameList<T>(Vec<T>);

impl<T: Ord + ScopeName> NameList<T> {
    fn new(names: Vec<T>) -> Result<Self> {
        let what = T::WHAT;
        if names.is_empty() {
            return Err(Error::invalid(format!("scope lists no {what}")));
        }
        if names.iter().collect::<BTreeSet<_>>().len() != names.len() {
            return Err(Error::invalid(format!("scope lists a {what} twice")));
        }
        Ok(NameList(names))
    }
}

impl<T> Deref for NameList<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

/// A name a scope can list, and what its messages call it.
pub trait ScopeName {
    const WHAT: &'static str;
}

impl ScopeName for PgName {
    const WHAT: &'static str = "schema";
}

impl ScopeName for TableName {
    const WHAT: &'static str = "table";
}

impl<'de, T> Deserialize<'de> for NameList<T>
where
    T: Deserialize<'de> + Ord + ScopeName,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<T>::deserialize(deserializer)?;
        NameList::new(names).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_duplicate_lists_are_invalid() {
        assert_eq!(Scope::tables(vec![]).unwrap_err().name(), "Input.Invalid");
        let t = TableName::new("public", "t").unwrap();
        let err = Scope::tables(vec![t.clone(), t]).unwrap_err();
        assert_eq!(err.name(), "Input.Invalid");
        assert!(err.to_string().contains("twice"), "{err}");
        let s = PgName::new("s").unwrap();
        assert!(Scope::schemas(vec![s.clone(), s]).is_err());
    }

    #[test]
    fn json_shape_and_json_that_would_be_invalid() {
        let scope: Scope = serde_json::from_str(
            r#"{"kind":"tables","tables":[{"schema":"public","name":"orders"}]}"#,
        )
        .unwrap();
        assert_eq!(
            scope,
            Scope::tables(vec![TableName::new("public", "orders").unwrap()]).unwrap()
        );
        assert_eq!(
            serde_json::to_value(&scope).unwrap(),
            serde_json::json!({"kind":"tables","tables":[{"schema":"public","name":"orders"}]})
        );
        let all: Scope = serde_json::from_str(r#"{"kind":"all_tables"}"#).unwrap();
        assert_eq!(all, Scope::AllTables);
        let empty = serde_json::from_str::<Scope>(r#"{"kind":"schemas","schemas":[]}"#);
        assert!(empty.unwrap_err().to_string().contains("no schema"));
        let twice = serde_json::from_str::<Scope>(r#"{"kind":"schemas","schemas":["a","a"]}"#);
        assert!(twice.unwrap_err().to_string().contains("twice"));
    }
}
