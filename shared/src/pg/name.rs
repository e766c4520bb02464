//! Names of PostgreSQL objects, checked once when they enter the system.
//!
//! PostgreSQL silently truncates identifiers to 63 bytes (NAMEDATALEN - 1),
//! so two long names could end up naming one object; we refuse them instead.
//! Replication slot names are stricter still: lower-case letters, digits and
//! underscores only (`ReplicationSlotValidateName` in slot.c).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

/// PostgreSQL's identifier limit in bytes.
pub const MAX_NAME_BYTES: usize = 63;

/// An identifier PostgreSQL will store unchanged: 1..=63 bytes, no NUL.
/// Any other character is allowed; it is quoted wherever it reaches SQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PgName(String);

impl PgName {
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_identifier(&name)?;
        Ok(PgName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name quoted as an SQL identifier.
    pub fn quoted(&self) -> String {
        crate::pg::quote::ident(&self.0)
    }
}

fn check_identifier(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("a name must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!(
            "name of {} bytes is longer than PostgreSQL's {MAX_NAME_BYTES}-byte limit: {}...",
            name.len(),
            name.chars().take(20).collect::<String>()
        )));
    }
    if name.contains('\0') {
        return Err(Error::invalid("a name must not contain a NUL character"));
    }
    Ok(())
}

impl TryFrom<String> for PgName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        PgName::new(value)
    }
}

impl From<PgName> for String {
    fn from(value: PgName) -> Self {
        value.0
    }
}

impl fmt::Display for PgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A replication slot name: 1..=63 bytes of `[a-z0-9_]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SlotName(String);

impl SlotName {
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_identifier(&name)?;
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
        {
            return Err(Error::invalid(format!(
                "replication slot name {name:?} contains {bad:?}; only lower-case letters, digits and underscores are allowed"
            )));
        }
        Ok(SlotName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SlotName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        SlotName::new(value)
    }
}

impl From<SlotName> for String {
    fn from(value: SlotName) -> Self {
        value.0
    }
}

impl fmt::Display for SlotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A schema-qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableName {
    pub schema: PgName,
    pub name: PgName,
}

impl TableName {
    pub fn new(schema: &str, name: &str) -> Result<Self> {
        Ok(TableName {
            schema: PgName::new(schema)?,
            name: PgName::new(name)?,
        })
    }

    /// `"schema"."name"`, each part quoted.
    pub fn quoted(&self) -> String {
        format!("{}.{}", self.schema.quoted(), self.name.quoted())
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.quoted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_63_bytes_and_refuses_64() {
        assert!(PgName::new("a".repeat(63)).is_ok());
        let err = PgName::new("a".repeat(64)).unwrap_err();
        assert_eq!(err.name(), "Input.Invalid");
        // Bytes, not characters: 32 two-byte characters are 64 bytes.
        assert!(PgName::new("é".repeat(32)).is_err());
        assert!(PgName::new("é".repeat(31)).is_ok());
    }

    #[test]
    fn refuses_empty_and_nul() {
        assert_eq!(PgName::new("").unwrap_err().name(), "Input.Invalid");
        assert_eq!(PgName::new("a\0b").unwrap_err().name(), "Input.Invalid");
    }

    #[test]
    fn keeps_quotes_and_semicolons_verbatim_and_quotes_them() {
        let name = PgName::new(r#"x"; DROP TABLE t; --"#).unwrap();
        assert_eq!(name.as_str(), r#"x"; DROP TABLE t; --"#);
        assert_eq!(name.quoted(), r#""x""; DROP TABLE t; --""#);
    }

    #[test]
    fn slot_names_are_restricted_like_postgres() {
        assert!(SlotName::new("clonesync_orders_1").is_ok());
        for bad in ["Upper", "has-dash", "semi;colon", "quote'", "", "sp ace"] {
            assert_eq!(
                SlotName::new(bad).unwrap_err().name(),
                "Input.Invalid",
                "{bad}"
            );
        }
        assert!(SlotName::new("a".repeat(64)).is_err());
    }

    #[test]
    fn names_round_trip_through_json_and_refuse_bad_json() {
        let table = TableName::new("Sales Schema", "MixedCase").unwrap();
        let json = serde_json::to_string(&table).unwrap();
        assert_eq!(serde_json::from_str::<TableName>(&json).unwrap(), table);
        let too_long = format!("\"{}\"", "s".repeat(64));
        assert!(serde_json::from_str::<SlotName>(&too_long).is_err());
    }
}
