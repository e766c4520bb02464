//! SQLSTATE -> error kind, decided once here.
//!
//! Callers that expect a particular code (for example `duplicate_object`
//! meaning "already done") look at it first with [`code_of`]; everything else
//! goes through [`classify`].

use crate::error::{Cause, Error};
use std::error::Error as _;

pub const DUPLICATE_OBJECT: &str = "42710";
pub const UNDEFINED_OBJECT: &str = "42704";
pub const OBJECT_IN_USE: &str = "55006";
pub const CONFIGURATION_LIMIT_EXCEEDED: &str = "53400";
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
pub const CANT_CHANGE_RUNTIME_PARAM: &str = "55P02";

/// The SQLSTATE of a server error, if the server sent one.
pub fn code_of(error: &tokio_postgres::Error) -> Option<&str> {
    error.as_db_error().map(|db| db.code().code())
}

/// Whether a SQLSTATE means "try the same thing again".
pub fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        // lock_not_available (lock_timeout), query_canceled (statement_timeout)
        "55P03" | "57014"
        // admin/crash shutdown, cannot_connect_now (starting up), database dropped
        | "57P01" | "57P02" | "57P03"
        // too_many_connections
        | "53300"
    ) || code.starts_with("08") // connection_exception
        || code.starts_with("40") // serialization_failure, deadlock_detected
}

/// Turn a driver error into the error kind the rest of the system uses.
pub fn classify(operation: &str, error: tokio_postgres::Error) -> Error {
    let operation = operation.to_string();
    if let Some(db) = error.as_db_error() {
        let code = db.code().code().to_string();
        let code = code.as_str();
        let message = db.message().to_string();
        let cause = Some(Box::new(error) as Cause);
        if is_transient_code(code) {
            return Error::TransientDatabase {
                operation,
                message,
                cause,
            };
        }
        if code == "42501" || code.starts_with("28") {
            return Error::PermissionDenied {
                operation,
                message,
                cause,
            };
        }
        return Error::Database {
            operation,
            sqlstate: code.to_string(),
            message,
            cause,
        };
    }
    // No SQLSTATE: the connection broke, timed out or never opened. Those are
    // transient; a value that failed to convert is a bug and is not.
    let io_cause = {
        let mut source = error.source();
        let mut found = false;
        while let Some(cause) = source {
            if cause.is::<std::io::Error>() {
                found = true;
                break;
            }
            source = cause.source();
        }
        found
    };
    let text = error.to_string();
    let transient =
        error.is_closed() || io_cause || text.contains("timeout") || text.contains("connect");
    let cause = Some(Box::new(error) as Cause);
    if transient {
        Error::TransientDatabase {
            operation,
            message: text,
            cause,
        }
    } else {
        Error::Database {
            operation,
            sqlstate: "none".into(),
            message: text,
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        for code in [
            "08006", "08001", "40001", "40P01", "55P03", "57014", "57P01", "53300",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in ["42501", "42710", "42P01", "53400", "55006", "XX000"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }
}
