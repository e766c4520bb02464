//! What every Lambda binary shares: logging, configuration and clients
//! built once per instance, input parsing, and the errorType mapping.

use crate::aws::ram::{self, Accepted, Share};
use crate::aws::rds::{self, AwsControlPlane, CloneSettings, SourceCluster};
use crate::aws::registry::Registry;
use crate::aws::{AwsClients, Settings};
use crate::cloud::Cloud;
use crate::control_plane::CloneInfo;
use crate::error::{Error, Result};
use lambda_runtime::Diagnostic;
use serde::de::DeserializeOwned;

/// The stable name is the errorType, so ASL `Retry`/`Catch` can match it.
impl From<Error> for Diagnostic {
    fn from(error: Error) -> Diagnostic {
        tracing::error!(kind = error.name(), error = %error, "step failed");
        Diagnostic {
            error_type: error.name().to_string(),
            error_message: error.to_string(),
        }
    }
}

/// JSON log lines to CloudWatch (lambda_runtime's subscriber; level from
/// `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Built once per function instance.
pub struct Context {
    pub settings: Settings,
    pub clients: AwsClients,
}

impl Context {
    pub async fn from_env() -> Result<Self> {
        let settings = Settings::from_env()?;
        let clients = AwsClients::from_env(&settings).await;
        Ok(Context { settings, clients })
    }
}

/// RAM, RDS, DynamoDB and Step Functions, with the clients built once.
impl Cloud for Context {
    type Plane<'a> = AwsControlPlane<'a>;

    fn plane_for<'a>(
        &'a self,
        pipeline_id: &str,
        source: &SourceCluster,
        clone: &CloneSettings,
    ) -> AwsControlPlane<'a> {
        AwsControlPlane {
            clients: &self.clients,
            settings: &self.settings,
            pipeline_id: pipeline_id.to_string(),
            source: source.clone(),
            clone: clone.clone(),
        }
    }

    fn region(&self) -> &str {
        &self.settings.region
    }

    fn registry(&self) -> Registry<'_> {
        Registry {
            client: &self.clients.dynamodb,
            table: &self.settings.registry_table,
        }
    }

    fn sfn(&self) -> &aws_sdk_sfn::Client {
        &self.clients.sfn
    }

    async fn share_cluster(&self, pipeline_id: &str, cluster_arn: &str) -> Result<Share> {
        ram::share_cluster(
            &self.clients.source_ram,
            pipeline_id,
            cluster_arn,
            &self.settings.target_account,
        )
        .await
    }

    async fn accept_share(&self, share_arn: &str) -> Result<Accepted> {
        ram::accept_share(
            &self.clients.ram,
            &self.clients.source_ram,
            share_arn,
            &self.settings.target_account,
        )
        .await
    }

    async fn share_of_invitation(&self, invitation_arn: &str) -> Result<Option<String>> {
        ram::share_of_invitation(&self.clients.ram, invitation_arn).await
    }

    async fn delete_share(&self, share_arn: &str) -> Result<bool> {
        ram::delete_share(&self.clients.source_ram, share_arn).await
    }

    async fn clone_status(&self, pipeline_id: &str, clone_id: &str) -> Result<CloneInfo> {
        rds::clone_status(&self.clients.rds, pipeline_id, clone_id).await
    }
}

/// Parse a task's input; a bad one is `Input.Invalid`.
pub fn parse<T: DeserializeOwned>(payload: serde_json::Value) -> Result<T> {
    serde_json::from_value(payload).map_err(|e| Error::InvalidInput {
        problems: vec![format!("task input: {e}")],
    })
}

/// Encode a task's output.
pub fn output<T: serde::Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::invalid(format!("encode output: {e}")))
}
