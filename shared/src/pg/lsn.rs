//! WAL positions.
//!
//! A thin wrapper over `postgres_types::PgLsn` that also travels as JSON in
//! PostgreSQL's own text form (`16/B374D848`), so state machine input and
//! output stay readable and comparable with what `psql` shows.

use postgres_types::PgLsn;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

impl Lsn {
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Bytes from `self` forward to `later` (0 when `later` is behind).
    pub fn bytes_until(self, later: Lsn) -> u64 {
        later.0.saturating_sub(self.0)
    }
}

impl From<PgLsn> for Lsn {
    fn from(value: PgLsn) -> Self {
        Lsn(u64::from(value))
    }
}

impl From<Lsn> for PgLsn {
    fn from(value: Lsn) -> Self {
        PgLsn::from(value.0)
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Self {
        Lsn(value)
    }
}

impl FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PgLsn::from_str(s)
            .map(Lsn::from)
            .map_err(|_| format!("{s:?} is not an LSN (expected e.g. 0/16B3748)"))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&PgLsn::from(self.0), f)
    }
}

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Lsn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_orders_numerically() {
        let a: Lsn = "0/16B3748".parse().unwrap();
        let b: Lsn = "1/0".parse().unwrap();
        assert_eq!(a.to_string(), "0/16B3748");
        assert!(a < b);
        assert_eq!(a.bytes_until(b), (1u64 << 32) - 0x16B3748);
        assert_eq!(b.bytes_until(a), 0);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"0/16B3748\"");
        assert_eq!(serde_json::from_str::<Lsn>(&json).unwrap(), a);
        assert!(serde_json::from_str::<Lsn>("\"nope\"").is_err());
    }
}
