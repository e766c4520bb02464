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
