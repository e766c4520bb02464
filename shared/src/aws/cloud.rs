//! The AWS cloud a Lambda function runs against: RDS for the clones, RAM
//! for the share, DynamoDB and Step Functions for the waits, with the
//! clients built once per function instance.

use crate::aws::coordination::StepFunctionsCoordination;
use crate::aws::ram;
use crate::aws::rds::{self, AwsControlPlane};
use crate::aws::registry::Registry;
use crate::aws::runs::S3Runs;
use crate::aws::{AwsClients, Settings};
use crate::error::{Error, Result};
use crate::pipeline::{Accepted, CloneInfo, CloneSettings, PipelineSpec, Share, SourceCluster};
use crate::ports::{Clones, Cloud, ResourceShare};

/// Built once per function instance.
pub struct AwsCloud {
    pub settings: Settings,
    pub clients: AwsClients,
}

impl AwsCloud {
    /// Configuration and clients from the function's environment.
    pub async fn from_env() -> Result<Self> {
        let settings = Settings::from_env()?;
        let clients = AwsClients::from_env(&settings).await;
        Ok(AwsCloud { settings, clients })
    }

    /// The registry and callbacks, with this instance's clients.
    pub fn coordination(&self) -> StepFunctionsCoordination<'_> {
        StepFunctionsCoordination {
            registry: Registry {
                client: &self.clients.dynamodb,
                table: &self.settings.registry_table,
            },
            sfn: &self.clients.sfn,
        }
    }
}

impl Cloud for AwsCloud {
    type Clones = AwsCloud;
    type Share = AwsCloud;
    type Coordination<'a> = StepFunctionsCoordination<'a>;
    type Runs<'a> = S3Runs<'a>;

    fn clones(&self) -> &AwsCloud {
        self
    }

    fn share(&self) -> &AwsCloud {
        self
    }

    fn coordination(&self) -> StepFunctionsCoordination<'_> {
        AwsCloud::coordination(self)
    }

    fn runs(&self) -> Result<S3Runs<'_>> {
        let bucket = self
            .settings
            .runs_bucket
            .as_deref()
            .ok_or_else(|| Error::ConfigInvalid {
                problems: vec![format!(
                    "{} is not set: this function was not given the runs bucket",
                    crate::aws::settings::ENV_RUNS_BUCKET
                )],
            })?;
        Ok(S3Runs {
            client: &self.clients.s3,
            bucket,
        })
    }

    fn region(&self) -> &str {
        &self.settings.region
    }
}

impl Clones for AwsCloud {
    type Plane<'a> = AwsControlPlane<'a>;

    fn plane_for<'a>(
        &'a self,
        pipeline: &PipelineSpec,
        source: &SourceCluster,
        clone: &CloneSettings,
    ) -> AwsControlPlane<'a> {
        AwsControlPlane {
            clients: &self.clients,
            settings: &self.settings,
            pipeline_id: pipeline.id.to_string(),
            setup_mark: pipeline.setup_mark.clone(),
            source: source.clone(),
            clone: clone.clone(),
        }
    }

    async fn clone_status(&self, pipeline_id: &str, clone_id: &str) -> Result<CloneInfo> {
        rds::clone_status(&self.clients.rds, pipeline_id, clone_id).await
    }

    async fn clone_exists(&self, clone_id: &str) -> Result<bool> {
        Ok(rds::describe_cluster(&self.clients.rds, clone_id)
            .await?
            .is_some())
    }
}

/// RAM: shared from the source account (the assumed role), accepted in
/// this one.
impl ResourceShare for AwsCloud {
    async fn share_cluster(
        &self,
        pipeline_id: &str,
        setup_mark: &str,
        cluster_arn: &str,
    ) -> Result<Share> {
        ram::share_cluster(
            &self.clients.source_ram,
            pipeline_id,
            setup_mark,
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
}
