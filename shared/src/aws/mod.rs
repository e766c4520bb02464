//! AWS adapters: RDS (the clone, behind [`crate::control_plane::ControlPlane`]),
//! RAM (the share), Secrets Manager (logins), Step Functions (task tokens)
//! and the DynamoDB pipeline registry.
//!
//! Every SDK error is turned into an [`Error`] here and nowhere else
//! ([`fault`]), so the state machine sees the same stable names whichever
//! service failed.

pub mod arn;
pub mod clients;
pub mod fault;
pub mod ram;
pub mod rds;
pub mod registry;
pub mod secrets;
pub mod settings;
pub mod sfn;

pub use arn::ClusterArn;
pub use clients::AwsClients;
pub use settings::Settings;

/// Tag keys clonesync puts on what it creates in AWS; a resource carrying
/// `clonesync:pipeline = <id>` is that pipeline's and may be reused or
/// deleted by it, anything else is left alone.
pub const TAG_PIPELINE: &str = "clonesync:pipeline";
pub const TAG_SOURCE_CLUSTER: &str = "clonesync:source-cluster";
