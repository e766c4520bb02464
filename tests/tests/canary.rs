//! A full run of the setup through the Lambda code (the `workflow` calls
//! each function's handler makes, with its `AwsCloud`, input parsing, output
//! encoding and errorType mapping) with a canary password in the source
//! secret: it must appear in no output, no error, no log line at any level,
//! and no server log.
//!
//! The databases are real local servers: the source, and a local clone
//! standing in for the Aurora clone (with `aurora_volume_logical_start_lsn()`
//! answering the LSN the clone was recovered to), both with verify-full TLS
//! as in AWS. Secrets Manager and
//! DynamoDB are moto; RDS, RAM and Step Functions answers are mocks, since
//! moto cannot restore across accounts or hold RAM invitations.

use aws_sdk_ram::operation::accept_resource_share_invitation::AcceptResourceShareInvitationOutput;
use aws_sdk_ram::operation::create_resource_share::CreateResourceShareOutput;
use aws_sdk_ram::operation::delete_resource_share::DeleteResourceShareOutput;
use aws_sdk_ram::operation::get_resource_share_invitations::GetResourceShareInvitationsOutput;
use aws_sdk_ram::operation::get_resource_shares::GetResourceSharesOutput;
use aws_sdk_ram::types::{ResourceShare, ResourceShareInvitation, ResourceShareInvitationStatus};
use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
use aws_sdk_rds::operation::delete_db_cluster::DeleteDbClusterOutput;
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_cluster_parameters::DescribeDbClusterParametersOutput;
use aws_sdk_rds::operation::describe_db_clusters::{
    DescribeDBClustersError, DescribeDbClustersOutput,
};
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::restore_db_cluster_to_point_in_time::RestoreDbClusterToPointInTimeOutput;
use aws_sdk_rds::types::error::DbClusterNotFoundFault;
use aws_sdk_rds::types::{DbCluster, DbClusterMember, DbInstance, Parameter, Tag};
use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessOutput;
use aws_smithy_mocks::{mock, Rule};
use clonesync::aws::AwsCloud;
use clonesync::aws::{AwsClients, Settings};
use clonesync::handlers;
use clonesync::pg::{Tls, TrustedRoots};
use clonesync::pipeline::names::{TAG_PIPELINE, TAG_SOURCE_CLUSTER};
use clonesync::ports::ControlPlane;
use clonesync::workflow::{self, waits, State};
use clonesync_tests::aws_mock::MockRules;
use clonesync_tests::capture::Captured;
use clonesync_tests::fixture::{connect, DB};
use clonesync_tests::moto::{Moto, ACCOUNT, REGION};
use clonesync_tests::tls::{enable_tls, TestCa};
use clonesync_tests::{create_schema, TestEnv};
use lambda_runtime::Diagnostic;

const CLUSTER_ARN: &str = "arn:aws:rds:eu-west-1:123456789012:cluster:orders-prod";
const SHARE_ARN: &str =
    "arn:aws:ram:eu-west-1:123456789012:resource-share/0d4c2a1e-0000-4000-8000-000000000001";
const CLONE_ID: &str = "clonesync-canary";

fn source_cluster_rules() -> Vec<Rule> {
    vec![
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some(CLUSTER_ARN))
            .then_output(|| {
                DescribeDbClustersOutput::builder()
                    .db_clusters(
                        DbCluster::builder()
                            .db_cluster_arn(CLUSTER_ARN)
                            .engine("aurora-postgresql")
                            .engine_version("15.4")
                            .status("available")
                            .db_cluster_parameter_group("orders-pg")
                            .db_cluster_members(
                                DbClusterMember::builder()
                                    .db_instance_identifier("orders-prod-1")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            }),
        mock!(aws_sdk_rds::Client::describe_db_cluster_parameters).then_output(|| {
            DescribeDbClusterParametersOutput::builder()
                .parameters(
                    Parameter::builder()
                        .parameter_name("rds.logical_replication")
                        .parameter_value("1")
                        .build(),
                )
                .build()
        }),
    ]
}

fn clone_cluster(port: u16) -> DbCluster {
    DbCluster::builder()
        .db_cluster_identifier(CLONE_ID)
        .status("available")
        .endpoint("localhost")
        .port(i32::from(port))
        .tag_list(Tag::builder().key(TAG_PIPELINE).value("canary").build())
        .tag_list(
            Tag::builder()
                .key(TAG_SOURCE_CLUSTER)
                .value(CLUSTER_ARN)
                .build(),
        )
        .db_cluster_members(
            DbClusterMember::builder()
                .db_instance_identifier(format!("{CLONE_ID}-writer"))
                .build(),
        )
        .build()
}

/// RDS, RAM and Step Functions as the target account sees them once the
/// clone (the local one on `clone_port`) exists.
fn target_rules(clone_port: Option<u16>) -> Vec<Rule> {
    let describe_clone = match clone_port {
        None => mock!(aws_sdk_rds::Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some(CLONE_ID))
            .then_error(|| {
                DescribeDBClustersError::DbClusterNotFoundFault(
                    DbClusterNotFoundFault::builder().build(),
                )
            }),
        Some(port) => mock!(aws_sdk_rds::Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some(CLONE_ID))
            .then_output(move || {
                DescribeDbClustersOutput::builder()
                    .db_clusters(clone_cluster(port))
                    .build()
            }),
    };
    let port = clone_port.unwrap_or(5432);
    vec![
        describe_clone,
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier().is_none())
            .then_output(|| DescribeDbClustersOutput::builder().build()),
        mock!(aws_sdk_rds::Client::restore_db_cluster_to_point_in_time).then_output(move || {
            RestoreDbClusterToPointInTimeOutput::builder()
                .db_cluster(clone_cluster(port))
                .build()
        }),
        mock!(aws_sdk_rds::Client::create_db_instance)
            .then_output(|| CreateDbInstanceOutput::builder().build()),
        mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier(format!("{CLONE_ID}-writer"))
                        .db_instance_status("available")
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_rds::Client::delete_db_instance)
            .then_output(|| DeleteDbInstanceOutput::builder().build()),
        mock!(aws_sdk_rds::Client::delete_db_cluster)
            .then_output(|| DeleteDbClusterOutput::builder().build()),
    ]
}

fn ram_rules() -> (Vec<Rule>, Vec<Rule>) {
    let share = || {
        ResourceShare::builder()
            .resource_share_arn(SHARE_ARN)
            .name("clonesync-canary")
            .build()
    };
    let source = vec![
        mock!(aws_sdk_ram::Client::get_resource_shares)
            .then_output(|| GetResourceSharesOutput::builder().build()),
        mock!(aws_sdk_ram::Client::create_resource_share).then_output(move || {
            CreateResourceShareOutput::builder()
                .resource_share(share())
                .build()
        }),
        mock!(aws_sdk_ram::Client::delete_resource_share)
            .match_requests(|r| r.resource_share_arn() == Some(SHARE_ARN))
            .then_output(|| DeleteResourceShareOutput::builder().build()),
    ];
    let target = vec![
        mock!(aws_sdk_ram::Client::get_resource_share_invitations).then_output(|| {
            GetResourceShareInvitationsOutput::builder()
                .resource_share_invitations(
                    ResourceShareInvitation::builder()
                        .resource_share_arn(SHARE_ARN)
                        .resource_share_invitation_arn(
                            format!("{SHARE_ARN}-invitation")
                                .replace("resource-share/", "resource-share-invitation/"),
                        )
                        .receiver_account_id(ACCOUNT)
                        .status(ResourceShareInvitationStatus::Pending)
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_ram::Client::accept_resource_share_invitation)
            .then_output(|| AcceptResourceShareInvitationOutput::builder().build()),
    ];
    (source, target)
}

async fn context(
    moto: &Moto,
    tls: &Tls,
    rules: &[Rule],
    ram: &(Vec<Rule>, Vec<Rule>),
    sfn: &Rule,
) -> AwsCloud {
    let source_rules = source_cluster_rules();
    let mocked = MockRules {
        rds: rules.iter().collect(),
        source_rds: source_rules.iter().collect(),
        source_ram: ram.0.iter().collect(),
        ram: ram.1.iter().collect(),
        sfn: vec![sfn],
        ..Default::default()
    }
    .clients();
    let real = moto.clients().await;
    AwsCloud {
        settings: Settings {
            db_tls: tls.clone(),
            ..moto.settings()
        },
        clients: AwsClients {
            secrets: real.secrets.clone(),
            source_secrets: real.secrets,
            dynamodb: real.dynamodb,
            ..mocked
        },
    }
}

/// What a handler returns to Lambda: the output JSON, or the Diagnostic.
fn returned<T: serde::Serialize>(result: clonesync::Result<T>) -> String {
    match result.and_then(|v| handlers::output(&v)) {
        Ok(value) => value.to_string(),
        Err(e) => {
            let d = Diagnostic::from(e);
            format!("{} {}", d.error_type, d.error_message)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_password_never_leaves_the_secret() {
    let captured = Captured::install();
    let env = TestEnv::start().await;
    let canary = env.source.password.expose().to_string();
    let source = env.source_client().await;
    create_schema(&source).await;
    // verify-full TLS, as in AWS; the local clone copies the setting.
    let ca = TestCa::new("canary CA");
    enable_tls(
        &env.source,
        &source,
        &env.root_path.join("tls"),
        &ca,
        &["localhost"],
    )
    .await;
    let tls = Tls::VerifyFull(TrustedRoots::from_pem(ca.pem().as_bytes(), "canary CA").unwrap());
    let moto = Moto::start();
    let real = moto.clients().await;
    moto.create_registry(&real).await;
    let login = env.source_endpoint();
    let secret = real
        .secrets
        .create_secret()
        .name("clonesync/canary")
        .secret_string(format!(
            r#"{{"username":"{}","password":"{canary}","host":"127.0.0.1","port":{},"dbname":"{DB}"}}"#,
            login.user, env.source.port
        ))
        .send()
        .await
        .unwrap();
    let secret_arn = secret.arn().unwrap().to_string();
    let mut outputs: Vec<String> = Vec::new();
    let ram = ram_rules();
    let sfn_success = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_output(|| SendTaskSuccessOutput::builder().build());

    // Before the clone exists.
    let before = target_rules(None);
    let ctx = context(&moto, &tls, &before, &ram, &sfn_success).await;
    let input = serde_json::json!({
        "pipeline": {"id": "canary", "scope": {"kind": "all_tables"}},
        "source": {"cluster_arn": CLUSTER_ARN, "secret_arn": secret_arn, "database": DB, "host": "localhost", "port": env.source.port},
        "clone": {"instance_class": "db.r6g.large"}
    });
    let mut state: State = workflow::state::validate(input, REGION).unwrap();
    outputs.push(returned(Ok(state.clone())));
    let plane = workflow::plane(&ctx, &state);
    outputs.push(returned(workflow::preflight(&plane, &state).await));
    let prepared = workflow::prepare_source(&plane, &state).await.unwrap();
    outputs.push(returned(Ok(prepared.clone())));
    state.created.source = Some(prepared);
    let share = workflow::share_cluster(&ctx, &state).await.unwrap();
    outputs.push(returned(Ok(share.clone())));
    state.share = Some(share);
    let token_input = serde_json::json!({"task_token": "token-share", "state": state});
    outputs.push(returned(handlers::accept_share(&ctx, token_input).await));
    state.accepted = Some(waits::accept_share(&ctx, &state).await.unwrap());

    // RDS's part, played locally: the clone of the source, taken now, whose
    // start LSN the Aurora function reports.
    let local = env.plane.create_clone(CLONE_ID).await.unwrap();
    let clone_client = connect(&env.plane.clone_login(&local)).await;
    let start_lsn = env
        .plane
        .clone_start_lsn(&local, &clone_client)
        .await
        .unwrap();
    clone_client
        .batch_execute(&format!(
            "CREATE FUNCTION pg_catalog.aurora_volume_logical_start_lsn() RETURNS pg_lsn LANGUAGE sql AS $$ SELECT '{start_lsn}'::pg_lsn $$"
        ))
        .await
        .unwrap();
    let after = target_rules(Some(local.port));
    let ctx = context(&moto, &tls, &after, &ram, &sfn_success).await;
    let plane = workflow::plane(&ctx, &state);
    let made = workflow::create_clone(&plane, &state).await.unwrap();
    outputs.push(returned(Ok(made.clone())));
    state.created.clone = Some(made);
    let token_input = serde_json::json!({"task_token": "token-clone", "state": state});
    outputs.push(returned(handlers::check_clone(&ctx, token_input).await));
    state.clone_info = Some(waits::check_clone(&ctx, &state).await.unwrap());
    let lsn = workflow::clone_lsn(&plane, &state).await.unwrap();
    assert_eq!(
        lsn.clone_lsn, start_lsn,
        "the Aurora function's answer is the one used"
    );
    outputs.push(returned(Ok(lsn.clone())));
    state.clone_lsn = Some(lsn);
    outputs.push(returned(workflow::clean_inherited(&plane, &state).await));
    let subscription = workflow::create_subscription(&plane, &state).await.unwrap();
    outputs.push(returned(Ok(subscription.clone())));
    state.created.subscription = Some(subscription);
    outputs.push(returned(workflow::advance_and_enable(&plane, &state).await));
    let verified = workflow::verify(&plane, &state).await;
    assert!(verified.is_ok(), "{verified:?}");
    // The subscription's own connection to the source is encrypted too.
    let walsender_ssl: Vec<bool> = source
        .query(
            "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = $1",
            &[&state.pipeline.subscription.as_str()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        walsender_ssl,
        [true],
        "the subscription connects with sslmode=require"
    );
    outputs.push(returned(verified));
    outputs.push(returned(workflow::register(&ctx, &state).await));

    // Failures: a wrong password, and a secret that is not JSON with the
    // canary inside.
    let wrong = real
        .secrets
        .create_secret()
        .name("clonesync/wrong")
        .secret_string(format!(
            r#"{{"username":"{}","password":"wrong-canary-91","port":1}}"#,
            login.user
        ))
        .send()
        .await
        .unwrap();
    let mut bad_state = state.clone();
    bad_state.source.secret_arn = wrong.arn().unwrap().to_string();
    let failed =
        returned(workflow::preflight(&workflow::plane(&ctx, &bad_state), &bad_state).await);
    assert!(failed.starts_with("Database.PermissionDenied"), "{failed}");
    outputs.push(failed);
    let garbage = real
        .secrets
        .create_secret()
        .name("clonesync/garbage")
        .secret_string(format!("user=x password={canary}"))
        .send()
        .await
        .unwrap();
    bad_state.source.secret_arn = garbage.arn().unwrap().to_string();
    let failed =
        returned(workflow::prepare_source(&workflow::plane(&ctx, &bad_state), &bad_state).await);
    assert!(failed.starts_with("Secret.Invalid"), "{failed}");
    outputs.push(failed);

    // Cleanup through the Lambda path, then RDS's part of the deletion.
    let clone_log = env.plane.clone_server(CLONE_ID).unwrap().unwrap().log();
    let cleaned = workflow::undo(&ctx, &state, &state.undo_plan()).await;
    assert!(
        cleaned.as_ref().is_ok_and(|c| c.databases.slot_dropped
            && c.databases.subscription_dropped
            && c.databases.clone_deleted
            && c.share_deleted),
        "{cleaned:?}"
    );
    outputs.push(returned(cleaned));
    env.plane.delete_clone(CLONE_ID).await.unwrap();

    let logs = captured.text();
    assert!(
        logs.contains("executing") && logs.contains("clonesync_create_subscription"),
        "the driver's statement logging was not captured, so this test could not fail"
    );
    assert!(
        logs.contains("GetSecretValue"),
        "SDK request logging was not captured"
    );
    for (what, text) in [
        ("logs", &logs),
        ("clone server log", &clone_log),
        ("source server log", &env.source.log()),
    ] {
        assert!(!text.contains(&canary), "the canary appears in the {what}");
        assert!(
            !text.contains("wrong-canary-91"),
            "the wrong password appears in the {what}"
        );
    }
    assert_eq!(outputs.len(), 16, "every handler's answer was kept");
    for output in &outputs {
        assert!(
            !output.contains(&canary) && !output.contains("wrong-canary-91"),
            "an output carries a password: {output}"
        );
        assert!(
            !output.to_lowercase().contains("password="),
            "an output carries a connection string: {output}"
        );
    }
}
