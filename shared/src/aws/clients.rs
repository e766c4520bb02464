//! SDK clients, built once per function instance.
//!
//! Calls about the source cluster (its facts, the RAM share, its login
//! secret) are made in the source account, with credentials of the role
//! named by `CLONESYNC_SOURCE_ROLE_ARN` (aws-config's STS AssumeRole
//! provider, refreshed before expiry). Everything else runs with the
//! function's own role in the target account.

use crate::aws::Settings;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};

#[derive(Clone, Debug)]
pub struct AwsClients {
    /// Target account.
    pub rds: aws_sdk_rds::Client,
    pub ram: aws_sdk_ram::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    /// Source account (through the assumed role).
    pub source_rds: aws_sdk_rds::Client,
    pub source_ram: aws_sdk_ram::Client,
    pub source_secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    /// Clients from the standard environment (credentials, Region,
    /// `AWS_ENDPOINT_URL`), with the source role assumed when configured.
    pub async fn from_env(settings: &Settings) -> Self {
        let target = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .load()
            .await;
        let source = match &settings.source_role_arn {
            Some(role) => {
                let mut provider = AssumeRoleProvider::builder(role.clone())
                    .session_name("clonesync")
                    .configure(&target);
                if let Some(external_id) = &settings.source_role_external_id {
                    provider = provider.external_id(external_id.clone());
                }
                aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(settings.region.clone()))
                    .credentials_provider(provider.build().await)
                    .load()
                    .await
            }
            None => target.clone(),
        };
        Self::from_configs(&target, &source)
    }

    pub fn from_configs(target: &SdkConfig, source: &SdkConfig) -> Self {
        AwsClients {
            rds: aws_sdk_rds::Client::new(target),
            ram: aws_sdk_ram::Client::new(target),
            secrets: aws_sdk_secretsmanager::Client::new(target),
            sfn: aws_sdk_sfn::Client::new(target),
            dynamodb: aws_sdk_dynamodb::Client::new(target),
            s3: s3_client(target),
            source_rds: aws_sdk_rds::Client::new(source),
            source_ram: aws_sdk_ram::Client::new(source),
            source_secrets: aws_sdk_secretsmanager::Client::new(source),
        }
    }
}

/// S3 addressed by path (`endpoint/bucket/key`) when an endpoint is set
/// (moto, a VPC endpoint URL): a virtual-hosted name under `localhost`
/// resolves nowhere. AWS's own endpoint keeps S3's default addressing.
fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}
