//! A function's configuration, read from its environment once at init.

use crate::error::{Error, Result};
use crate::pg::{Tls, TrustedRoots};

/// What template.yaml sets on the functions. Every problem is reported at
/// once, as `Config.Invalid`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Region the functions (and the clone) run in.
    pub region: String,
    /// This (target) account, the share's principal.
    pub target_account: String,
    /// Role in the source account for RAM and RDS calls there; `None` when
    /// source and target are one account.
    pub source_role_arn: Option<String>,
    /// External id the source role's trust policy demands, if any.
    pub source_role_external_id: Option<String>,
    /// DynamoDB table of pipelines and waiting task tokens.
    pub registry_table: String,
    /// The runs bucket (a verification's table list and verdicts); only
    /// the functions that read or write it are given it.
    pub runs_bucket: Option<String>,
    /// TLS for the database sessions: `verify-full` against the CA bundle
    /// unless explicitly disabled.
    pub db_tls: Tls,
}

pub const ENV_REGION: &str = "AWS_REGION";
pub const ENV_TARGET_ACCOUNT: &str = "CLONESYNC_TARGET_ACCOUNT_ID";
pub const ENV_SOURCE_ROLE: &str = "CLONESYNC_SOURCE_ROLE_ARN";
pub const ENV_SOURCE_EXTERNAL_ID: &str = "CLONESYNC_SOURCE_ROLE_EXTERNAL_ID";
pub const ENV_REGISTRY_TABLE: &str = "CLONESYNC_REGISTRY_TABLE";
pub const ENV_RUNS_BUCKET: &str = "CLONESYNC_RUNS_BUCKET";
pub const ENV_DB_TLS: &str = "CLONESYNC_DB_TLS";
pub const ENV_DB_CA_FILE: &str = "CLONESYNC_DB_CA_FILE";

impl Settings {
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// From any key lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut problems = Vec::new();
        let mut required = |key: &str| match lookup(key).filter(|v| !v.trim().is_empty()) {
            Some(value) => value,
            None => {
                problems.push(format!("{key} is not set"));
                String::new()
            }
        };
        let region = required(ENV_REGION);
        let target_account = required(ENV_TARGET_ACCOUNT);
        let registry_table = required(ENV_REGISTRY_TABLE);
        if !target_account.is_empty()
            && (target_account.len() != 12 || !target_account.bytes().all(|b| b.is_ascii_digit()))
        {
            problems.push(format!(
                "{ENV_TARGET_ACCOUNT} must be a 12-digit account id"
            ));
        }
        let optional = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let source_role_arn = optional(ENV_SOURCE_ROLE);
        if let Some(role) = &source_role_arn {
            if !role.starts_with("arn:") || !role.contains(":role/") {
                problems.push(format!("{ENV_SOURCE_ROLE} must be an IAM role ARN"));
            }
        }
        let runs_bucket = optional(ENV_RUNS_BUCKET);
        if let Some(bucket) = &runs_bucket {
            if !crate::aws::runs::valid_bucket_name(bucket) {
                problems.push(format!(
                    "{ENV_RUNS_BUCKET} {bucket:?} is not an S3 bucket name"
                ));
            }
        }
        let db_tls = match optional(ENV_DB_TLS).as_deref().unwrap_or("verify-full") {
            "disable" => Some(Tls::Disable),
            "verify-full" => match optional(ENV_DB_CA_FILE) {
                Some(path) => match TrustedRoots::from_file(std::path::Path::new(&path)) {
                    Ok(roots) => Some(Tls::VerifyFull(roots)),
                    Err(Error::ConfigInvalid { problems: p }) => {
                        problems.extend(p);
                        None
                    }
                    Err(other) => {
                        problems.push(other.to_string());
                        None
                    }
                },
                None => {
                    problems.push(format!(
                        "{ENV_DB_CA_FILE} is not set: verify-full TLS needs the RDS CA bundle \
                         (or set {ENV_DB_TLS}=disable)"
                    ));
                    None
                }
            },
            other => {
                problems.push(format!(
                    "{ENV_DB_TLS} is {other:?}; use verify-full or disable"
                ));
                None
            }
        };
        if !problems.is_empty() {
            return Err(Error::ConfigInvalid { problems });
        }
        Ok(Settings {
            db_tls: db_tls.unwrap_or(Tls::Disable),
            region,
            target_account,
            source_role_arn,
            source_role_external_id: optional(ENV_SOURCE_EXTERNAL_ID),
            registry_table,
            runs_bucket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn verify_full_reads_the_ca_bundle_and_refuses_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("clonesync-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("bundle.pem");
        std::fs::write(&bundle, "not a certificate").unwrap();
        let path = bundle.display().to_string();
        let env: HashMap<&str, &str> = HashMap::from([
            (ENV_REGION, "eu-west-1"),
            (ENV_TARGET_ACCOUNT, "222233334444"),
            (ENV_REGISTRY_TABLE, "clonesync"),
            (ENV_DB_CA_FILE, path.as_str()),
        ]);
        let err = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(err.to_string().contains("bundle.pem"), "{err}");
        let odd: HashMap<&str, &str> = HashMap::from([(ENV_DB_TLS, "prefer")]);
        let err = Settings::from_lookup(|k| odd.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(err.to_string().contains("verify-full or disable"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reports_every_missing_setting_at_once() {
        let err = Settings::from_lookup(|_| None).unwrap_err();
        assert_eq!(err.name(), "Config.Invalid");
        let text = err.to_string();
        for key in [
            ENV_REGION,
            ENV_TARGET_ACCOUNT,
            ENV_REGISTRY_TABLE,
            ENV_DB_CA_FILE,
        ] {
            assert!(text.contains(key), "{text}");
        }
    }

    #[test]
    fn reads_a_complete_environment() {
        let env: HashMap<&str, &str> = HashMap::from([
            (ENV_REGION, "eu-west-1"),
            (ENV_TARGET_ACCOUNT, "222233334444"),
            (ENV_REGISTRY_TABLE, "clonesync"),
            (ENV_DB_TLS, "disable"),
            (
                ENV_SOURCE_ROLE,
                "arn:aws:iam::111122223333:role/clonesync-source",
            ),
        ]);
        let settings = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(settings.target_account, "222233334444");
        assert_eq!(
            settings.source_role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/clonesync-source")
        );
        let bad = HashMap::from([(ENV_SOURCE_ROLE, "nope"), (ENV_TARGET_ACCOUNT, "12")]);
        let err = Settings::from_lookup(|k| bad.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(err.to_string().contains("12-digit"), "{err}");
        assert!(
            err.to_string().contains(ENV_DB_CA_FILE),
            "verify-full is the default: {err}"
        );
        assert!(err.to_string().contains("IAM role ARN"), "{err}");
    }
}
