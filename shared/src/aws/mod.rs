//! AWS adapters: RDS (the clone, behind [`crate::ports::ControlPlane`]),
//! RAM (the share), Secrets Manager (logins), Step Functions (task tokens)
//! the DynamoDB pipeline registry and the S3 runs bucket; [`AwsCloud`] puts them behind the
//! ports for the Lambda functions.
//!
//! Every SDK error is turned into an [`crate::Error`] here and nowhere else
//! ([`fault`]), so the state machine sees the same stable names whichever
//! service failed.

pub(crate) mod clients;
pub(crate) mod cloud;
pub(crate) mod coordination;
pub mod fault;
pub mod ram;
pub mod rds;
pub mod registry;
pub mod runs;
pub mod secrets;
pub mod settings;
pub mod sfn;

pub use clients::AwsClients;
pub use cloud::AwsCloud;
pub use coordination::StepFunctionsCoordination;
pub use settings::Settings;
