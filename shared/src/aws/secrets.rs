//! Database logins from Secrets Manager, fetched by ARN when a step
//! connects and dropped when it ends.
//!
//! The secret is the JSON RDS writes for a managed login (`username`,
//! `password`, optionally `host`, `port`, `dbname`). The password goes
//! straight into a [`Secret`], which prints as `<redacted>` and does not
//! implement `Serialize`; errors name the secret's ARN and the missing
//! field, never any of its content.

use crate::aws::fault::classify;
use crate::error::{Error, Result};
use crate::pg::{Endpoint, Secret};

/// A login read from a secret.
#[derive(Debug, Clone)]
pub struct Login {
    pub username: String,
    pub password: Secret,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
    /// The secret version it was read from (`VersionId`).
    pub version: String,
}

impl Login {
    /// The login at a given host and database.
    pub fn endpoint(&self, host: &str, port: u16, dbname: &str) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            port,
            dbname: dbname.to_string(),
            user: self.username.clone(),
            password: Some(self.password.clone()),
        }
    }
}

/// Whether the secret rotates, and every how many days (RDS-managed
/// master user secrets rotate every 7 days by default).
pub async fn rotation(
    client: &aws_sdk_secretsmanager::Client,
    secret_arn: &str,
) -> Result<Option<i64>> {
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError as E;
    match client.describe_secret().secret_id(secret_arn).send().await {
        Ok(out) if out.rotation_enabled() == Some(true) => Ok(Some(
            out.rotation_rules()
                .and_then(|r| r.automatically_after_days())
                .unwrap_or(0),
        )),
        Ok(_) => Ok(None),
        Err(e) => Err(match e.as_service_error() {
            Some(E::ResourceNotFoundException(_)) => Error::AwsNotFound {
                service: "secretsmanager".into(),
                what: format!("secret {secret_arn}"),
            },
            _ => classify("secretsmanager", "DescribeSecret", e),
        }),
    }
}

/// The login in the secret's current version (`AWSCURRENT`).
pub async fn fetch_login(
    client: &aws_sdk_secretsmanager::Client,
    secret_arn: &str,
) -> Result<Login> {
    fetch_login_version(client, secret_arn, None).await
}

/// The login in the secret's previous version (`AWSPREVIOUS`, which a
/// rotation gives the version it replaced); `None` when the secret never
/// rotated.
pub async fn fetch_previous_login(
    client: &aws_sdk_secretsmanager::Client,
    secret_arn: &str,
) -> Result<Option<Login>> {
    match fetch_login_version(client, secret_arn, Some("AWSPREVIOUS")).await {
        Ok(login) => Ok(Some(login)),
        // Secrets Manager answers a stage no version has with
        // ResourceNotFoundException, as for a missing secret; the current
        // version was read by then, so the secret exists.
        Err(Error::AwsNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn fetch_login_version(
    client: &aws_sdk_secretsmanager::Client,
    secret_arn: &str,
    stage: Option<&str>,
) -> Result<Login> {
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError as E;
    let request = client
        .get_secret_value()
        .secret_id(secret_arn)
        .set_version_stage(stage.map(str::to_string));
    let out = match request.send().await {
        Ok(out) => out,
        Err(e) => {
            return Err(match e.as_service_error() {
                Some(E::ResourceNotFoundException(_)) => Error::AwsNotFound {
                    service: "secretsmanager".into(),
                    what: match stage {
                        Some(stage) => format!("version {stage} of secret {secret_arn}"),
                        None => format!("secret {secret_arn}"),
                    },
                },
                Some(E::DecryptionFailure(_)) => Error::AwsAccessDenied {
                    service: "secretsmanager".into(),
                    operation: "GetSecretValue".into(),
                    message: format!(
                        "cannot decrypt secret {secret_arn}: check the KMS key policy"
                    ),
                    cause: None,
                },
                _ => classify("secretsmanager", "GetSecretValue", e),
            })
        }
    };
    let invalid = |reason: &str| Error::SecretInvalid {
        secret_arn: secret_arn.to_string(),
        reason: reason.to_string(),
    };
    let text = out.secret_string().ok_or_else(|| {
        invalid("the secret has no SecretString (binary secrets are not supported)")
    })?;
    let mut login = parse_login(text).map_err(|reason| invalid(&reason))?;
    login.version = out.version_id().unwrap_or_default().to_string();
    Ok(login)
}

/// Parse the JSON; the error says which field is wrong, not what it held.
fn parse_login(text: &str) -> Result<Login, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| "the SecretString is not a JSON object".to_string())?;
    let object = value
        .as_object()
        .ok_or_else(|| "the SecretString is not a JSON object".to_string())?;
    let text_field = |name: &str| {
        object
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let username = text_field("username").ok_or("field \"username\" is missing or not a string")?;
    let password = text_field("password").ok_or("field \"password\" is missing or not a string")?;
    let port = match object.get("port") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or("field \"port\" is not a port number")?,
        ),
        Some(serde_json::Value::String(s)) => Some(
            s.parse()
                .map_err(|_| "field \"port\" is not a port number")?,
        ),
        Some(_) => return Err("field \"port\" is not a port number".into()),
    };
    Ok(Login {
        username,
        password: Secret::new(password),
        host: text_field("host"),
        port,
        dbname: text_field("dbname"),
        version: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rds_secret_shape() {
        let login = parse_login(r#"{"username":"repl","password":"p@ss","host":"h","port":5432,"dbname":"app","engine":"postgres"}"#).unwrap();
        assert_eq!(login.username, "repl");
        assert_eq!(login.port, Some(5432));
        assert_eq!(login.password.expose(), "p@ss");
        assert!(!format!("{login:?}").contains("p@ss"));
    }

    #[test]
    fn errors_never_repeat_the_content() {
        for text in [
            r#"{"username":"u"}"#,
            r#"{"password":"hunter2-canary"}"#,
            "hunter2-canary",
            r#"{"username":"u","password":"hunter2-canary","port":"x"}"#,
        ] {
            let err = parse_login(text).unwrap_err();
            assert!(!err.contains("hunter2-canary"), "{err}");
        }
    }
}
