//! A value that must never be printed or serialized: a password, or a
//! connection string that contains one.

use std::fmt;

/// Holds secret text. It has no `Display`, no `Serialize`, and its `Debug`
/// prints `<redacted>`, so it cannot reach a log line, an error message or
/// a state machine payload by accident. Read it with [`Secret::expose`] at
/// the moment it is handed to a connection.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A secret can be sent as a bind parameter (PostgreSQL `text`): the value
/// travels in the protocol's Bind message, never in statement text, and the
/// driver's debug logging of parameters prints this type's redacted
/// `Debug`.
impl postgres_types::ToSql for Secret {
    fn to_sql(
        &self,
        ty: &postgres_types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &postgres_types::Type) -> bool {
        <&str as postgres_types::ToSql>::accepts(ty)
    }

    postgres_types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("canary-s3cr3t");
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert!(!format!("{:#?}", Some(secret)).contains("canary"));
    }
}
