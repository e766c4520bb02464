//! What every Lambda binary shares: logging, configuration and clients
//! built once per instance, input parsing, and the errorType mapping.

use crate::aws::rds::AwsControlPlane;
use crate::aws::registry::Registry;
use crate::aws::{AwsClients, Settings};
use crate::error::{Error, Result};
use crate::workflow::State;
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

    /// The AWS control plane for one pipeline's state.
    pub fn plane(&self, state: &State) -> AwsControlPlane<'_> {
        AwsControlPlane {
            clients: &self.clients,
            settings: &self.settings,
            pipeline_id: state.pipeline.id.to_string(),
            source: state.source.clone(),
            clone: state.clone.clone(),
        }
    }

    pub fn registry(&self) -> Registry<'_> {
        Registry {
            client: &self.clients.dynamodb,
            table: &self.settings.registry_table,
        }
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
