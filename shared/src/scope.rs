//! Which tables a pipeline replicates.

use crate::error::{Error, Result};
use crate::pg::{PgName, TableName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What the publication covers, as the three forms `CREATE PUBLICATION`
/// offers: `FOR ALL TABLES`, `FOR TABLES IN SCHEMA ...`, `FOR TABLE ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    AllTables,
    Schemas { schemas: Vec<PgName> },
    Tables { tables: Vec<TableName> },
}

impl Scope {
    /// Refuse empty lists and duplicates: both would make the publication
    /// differ from what the user wrote.
    pub fn validate(&self) -> Result<()> {
        let duplicates = |count: usize, unique: usize| count != unique;
        match self {
            Scope::AllTables => Ok(()),
            Scope::Schemas { schemas } => {
                if schemas.is_empty() {
                    return Err(Error::invalid("scope lists no schema"));
                }
                if duplicates(schemas.len(), schemas.iter().collect::<BTreeSet<_>>().len()) {
                    return Err(Error::invalid("scope lists a schema twice"));
                }
                Ok(())
            }
            Scope::Tables { tables } => {
                if tables.is_empty() {
                    return Err(Error::invalid("scope lists no table"));
                }
                if duplicates(tables.len(), tables.iter().collect::<BTreeSet<_>>().len()) {
                    return Err(Error::invalid("scope lists a table twice"));
                }
                Ok(())
            }
        }
    }

    /// The `FOR ...` clause of `CREATE PUBLICATION`, every name quoted.
    pub fn publication_clause(&self) -> String {
        match self {
            Scope::AllTables => "FOR ALL TABLES".to_string(),
            Scope::Schemas { schemas } => format!(
                "FOR TABLES IN SCHEMA {}",
                schemas
                    .iter()
                    .map(PgName::quoted)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Scope::Tables { tables } => format!(
                "FOR TABLE {}",
                tables
                    .iter()
                    .map(TableName::quoted)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_quote_every_name() {
        let scope = Scope::Tables {
            tables: vec![TableName::new("Sales Schema", "a\"b").unwrap()],
        };
        assert_eq!(
            scope.publication_clause(),
            r#"FOR TABLE "Sales Schema"."a""b""#
        );
        let scope = Scope::Schemas {
            schemas: vec![PgName::new("s;1").unwrap()],
        };
        assert_eq!(scope.publication_clause(), r#"FOR TABLES IN SCHEMA "s;1""#);
    }

    #[test]
    fn empty_and_duplicate_lists_are_invalid() {
        assert!(Scope::Tables { tables: vec![] }.validate().is_err());
        let t = TableName::new("public", "t").unwrap();
        let err = Scope::Tables {
            tables: vec![t.clone(), t],
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.name(), "Input.Invalid");
        assert!(Scope::AllTables.validate().is_ok());
    }

    #[test]
    fn json_shape() {
        let scope: Scope = serde_json::from_str(
            r#"{"kind":"tables","tables":[{"schema":"public","name":"orders"}]}"#,
        )
        .unwrap();
        assert_eq!(
            scope,
            Scope::Tables {
                tables: vec![TableName::new("public", "orders").unwrap()]
            }
        );
        let all: Scope = serde_json::from_str(r#"{"kind":"all_tables"}"#).unwrap();
        assert_eq!(all, Scope::AllTables);
    }
}
