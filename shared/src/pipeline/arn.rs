//! The one ARN clonesync takes apart: the source cluster's.

use crate::error::{Error, Result};
use std::fmt;

/// `arn:<partition>:rds:<region>:<account>:cluster:<identifier>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub cluster_id: String,
}

impl ClusterArn {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::invalid(format!("source.cluster_arn {text:?}: {why}"));
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 7 || parts[0] != "arn" {
            return Err(bad(
                "not an ARN of the form arn:aws:rds:<region>:<account>:cluster:<id>",
            ));
        }
        if parts[2] != "rds" || parts[5] != "cluster" {
            return Err(bad("not an RDS DB cluster ARN"));
        }
        if parts[3].is_empty() {
            return Err(bad("no Region"));
        }
        if parts[4].len() != 12 || !parts[4].bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the account must be 12 digits"));
        }
        if parts[6].is_empty() {
            return Err(bad("no cluster identifier"));
        }
        Ok(ClusterArn {
            partition: parts[1].to_string(),
            region: parts[3].to_string(),
            account: parts[4].to_string(),
            cluster_id: parts[6].to_string(),
        })
    }
}

impl fmt::Display for ClusterArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:rds:{}:{}:cluster:{}",
            self.partition, self.region, self.account, self.cluster_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_cluster_arn() {
        let text = "arn:aws:rds:eu-west-1:111122223333:cluster:prod-db";
        let arn = ClusterArn::parse(text).unwrap();
        assert_eq!(arn.account, "111122223333");
        assert_eq!(arn.region, "eu-west-1");
        assert_eq!(arn.cluster_id, "prod-db");
        assert_eq!(arn.to_string(), text);
    }

    #[test]
    fn refuses_other_arns_with_a_named_error() {
        for text in [
            "prod-db",
            "arn:aws:rds:eu-west-1:111122223333:db:prod-db-1",
            "arn:aws:s3:::bucket",
            "arn:aws:rds:eu-west-1:1234:cluster:x",
            "arn:aws:rds::111122223333:cluster:x",
        ] {
            let err = ClusterArn::parse(text).unwrap_err();
            assert_eq!(err.name(), "Input.Invalid", "{text}");
        }
    }
}
