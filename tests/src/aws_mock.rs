//! AWS clients for tests: `aws-smithy-mocks` rules per service, so the SDK
//! really deserializes each modeled error and the adapters' mapping runs.

use aws_smithy_mocks::{mock_client, Rule, RuleMode};
use clonesync::aws::rds::AwsControlPlane;
use clonesync::aws::{AwsClients, Settings};
use clonesync::pipeline::{CloneSettings, SourceCluster};

pub const SOURCE_ACCOUNT: &str = "111122223333";
pub const TARGET_ACCOUNT: &str = "444455556666";
pub const REGION: &str = "eu-west-1";
pub const CLUSTER_ARN: &str = "arn:aws:rds:eu-west-1:111122223333:cluster:orders-prod";
pub const SECRET_ARN: &str =
    "arn:aws:secretsmanager:eu-west-1:111122223333:secret:orders-repl-AbCdEf";

pub fn settings() -> Settings {
    Settings {
        region: REGION.into(),
        target_account: TARGET_ACCOUNT.into(),
        source_role_arn: None,
        source_role_external_id: None,
        registry_table: "clonesync-test".into(),
        runs_bucket: Some("clonesync-runs-test".into()),
        db_tls: clonesync::pg::Tls::Disable,
    }
}

/// Rules per client; a client given no rules fails any call it gets.
#[derive(Default)]
pub struct MockRules<'a> {
    pub rds: Vec<&'a Rule>,
    pub ram: Vec<&'a Rule>,
    pub secrets: Vec<&'a Rule>,
    pub sfn: Vec<&'a Rule>,
    pub dynamodb: Vec<&'a Rule>,
    pub s3: Vec<&'a Rule>,
    pub source_rds: Vec<&'a Rule>,
    pub source_ram: Vec<&'a Rule>,
    pub source_secrets: Vec<&'a Rule>,
}

/// Every SDK operation the clients it is given send, by service and name
/// (the names the adapters' errors carry): what the local IAM model's list
/// of calls is checked against (`clonesync_local::iam::calls`).
#[derive(Debug, Clone, Default)]
pub struct Operations(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl Operations {
    /// The operations sent so far, as `(service, operation)` with the
    /// service in lower case (`rds`, `ram`, `secretsmanager`, ...).
    pub fn sent(&self) -> std::collections::BTreeSet<(String, String)> {
        self.0
            .lock()
            .expect("operations lock")
            .iter()
            .cloned()
            .collect()
    }
}

/// The `(service, operation)` pairs of the local IAM model's `calls`, as
/// [`Operations::sent`] gives the adapters' own.
pub fn listed(
    calls: Vec<clonesync_local::iam::calls::Call>,
) -> std::collections::BTreeSet<(String, String)> {
    calls
        .into_iter()
        .map(|c| (c.service.to_string(), c.operation.to_string()))
        .collect()
}

/// What the local IAM model substitutes for these clients' account and
/// Region.
pub fn iam_substitutions() -> clonesync_local::iam::Substitutions {
    clonesync_local::iam::Substitutions::local(
        REGION,
        TARGET_ACCOUNT,
        "clonesync-test",
        "clonesync-runs-test",
    )
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for Operations {
    fn name(&self) -> &'static str {
        "Operations"
    }

    // The operation's metadata is in the bag from serialization on (not
    // yet at `read_before_execution`).
    fn read_before_serialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(metadata) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
        {
            self.0.lock().expect("operations lock").push((
                metadata.service().to_lowercase().replace(' ', ""),
                metadata.name().to_string(),
            ));
        }
        Ok(())
    }
}

impl MockRules<'_> {
    /// [`MockRules::clients`] whose every operation `operations` records.
    pub fn clients_recording(&self, operations: &Operations) -> AwsClients {
        let c = self.clients();
        macro_rules! recording {
            ($sdk:ident, $client:expr) => {
                $sdk::Client::from_conf(
                    $client
                        .config()
                        .to_builder()
                        .interceptor(operations.clone())
                        .build(),
                )
            };
        }
        AwsClients {
            rds: recording!(aws_sdk_rds, c.rds),
            ram: recording!(aws_sdk_ram, c.ram),
            secrets: recording!(aws_sdk_secretsmanager, c.secrets),
            sfn: recording!(aws_sdk_sfn, c.sfn),
            dynamodb: recording!(aws_sdk_dynamodb, c.dynamodb),
            s3: recording!(aws_sdk_s3, c.s3),
            source_rds: recording!(aws_sdk_rds, c.source_rds),
            source_ram: recording!(aws_sdk_ram, c.source_ram),
            source_secrets: recording!(aws_sdk_secretsmanager, c.source_secrets),
        }
    }

    /// `MatchAny`: a rule answers every request it matches, so the SDK's
    /// own retries of a throttled call see the same answer.
    pub fn clients(&self) -> AwsClients {
        AwsClients {
            rds: mock_client!(aws_sdk_rds, RuleMode::MatchAny, &self.rds),
            ram: mock_client!(aws_sdk_ram, RuleMode::MatchAny, &self.ram),
            secrets: mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, &self.secrets),
            sfn: mock_client!(aws_sdk_sfn, RuleMode::MatchAny, &self.sfn),
            dynamodb: mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &self.dynamodb),
            s3: mock_client!(aws_sdk_s3, RuleMode::MatchAny, &self.s3),
            source_rds: mock_client!(aws_sdk_rds, RuleMode::MatchAny, &self.source_rds),
            source_ram: mock_client!(aws_sdk_ram, RuleMode::MatchAny, &self.source_ram),
            source_secrets: mock_client!(
                aws_sdk_secretsmanager,
                RuleMode::MatchAny,
                &self.source_secrets
            ),
        }
    }
}

/// An unmodeled service error carrying `code`, as AWS sends throttling
/// and access-denied answers.
pub fn coded(code: &str) -> aws_sdk_rds::error::ErrorMetadata {
    aws_sdk_rds::error::ErrorMetadata::builder()
        .code(code)
        .message(format!("{code} (from the mock)"))
        .build()
}

/// The RDS control plane of pipeline `orders_dev` for the cluster
/// `cluster_arn`, cloned with `kms_key_id` if given.
pub fn orders_plane<'a>(
    clients: &'a AwsClients,
    settings: &'a Settings,
    cluster_arn: &str,
    kms_key_id: Option<&str>,
) -> AwsControlPlane<'a> {
    AwsControlPlane {
        clients,
        settings,
        pipeline_id: "orders_dev".into(),
        setup_mark: String::new(),
        source: SourceCluster {
            cluster_arn: cluster_arn.into(),
            secret_arn: SECRET_ARN.into(),
            database: Some("orders".into()),
            databases: None,
            host: None,
            port: None,
        },
        clone: CloneSettings {
            instance_class: "db.r6g.large".into(),
            db_subnet_group: Some("private".into()),
            security_group_ids: vec!["sg-0123456789abcdef0".into()],
            kms_key_id: kms_key_id.map(str::to_string),
            secret_arn: None,
            db_cluster_parameter_group: Some("clonesync-copy".into()),
            db_parameter_group: Some("clonesync-writer".into()),
        },
    }
}
