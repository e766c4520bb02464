//! The AWS calls the AWS adapters (`clonesync::aws::rds`, `ram`,
//! `secrets`) make for each port operation the local cloud plays, with the
//! resources and condition keys IAM evaluates for them (the service
//! authorization reference's resource types and condition keys for each
//! action). `aws_rds::the_local_iam_model_lists_every_call_the_rds_adapter_sends`
//! and its RAM twin run the adapters against modeled answers and check that
//! the operations they send are the ones listed here.

use super::{Account, Request, Substitutions};
use clonesync::pipeline::names::{writer_instance_id, TAG_PIPELINE};

/// One SDK operation: its service and name (as the adapter's errors name
/// them), the credentials it is made with, and what IAM authorizes.
#[derive(Debug, Clone)]
pub struct Call {
    pub service: &'static str,
    pub operation: &'static str,
    pub account: Account,
    pub requests: Vec<Request>,
}

fn call(
    service: &'static str,
    operation: &'static str,
    account: Account,
    requests: Vec<Request>,
) -> Call {
    Call {
        service,
        operation,
        account,
        requests,
    }
}

fn rds_arn(subs: &Substitutions, kind: &str, id: &str) -> String {
    format!("arn:aws:rds:{}:{}:{kind}:{id}", subs.region, subs.account)
}

/// The defaults RDS applies to a restore and an instance given no group
/// (RestoreDBClusterToPointInTime and CreateDBInstance authorize the
/// groups they use, given or default).
const DEFAULT_CLUSTER_PG: &str = "default.aurora-postgresql15";
const DEFAULT_PG: &str = "default.aurora-postgresql15";
const DEFAULT_OG: &str = "default:aurora-postgresql-15";
const DEFAULT_SUBGRP: &str = "default";

fn tagging(request: Request, pipeline_id: &str) -> Request {
    request
        .with(&format!("aws:RequestTag/{TAG_PIPELINE}"), &[pipeline_id])
        .with("aws:TagKeys", &[TAG_PIPELINE])
}

/// `ControlPlane::preflight`: the source cluster, its parameter group and
/// its login's rotation (in the source account) and the target's clusters.
pub fn preflight(subs: &Substitutions, source_cluster: &str) -> Vec<Call> {
    vec![
        call(
            "rds",
            "DescribeDBClusters",
            Account::Source,
            vec![Request::new("rds:DescribeDBClusters", source_cluster)],
        ),
        call(
            "rds",
            "DescribeDBClusterParameters",
            Account::Source,
            vec![Request::new(
                "rds:DescribeDBClusterParameters",
                source_cluster_pg(subs, source_cluster),
            )],
        ),
        call(
            "secretsmanager",
            "DescribeSecret",
            Account::Source,
            vec![Request::new(
                "secretsmanager:DescribeSecret",
                subs.source_secret_arn.clone(),
            )],
        ),
        call(
            "rds",
            "DescribeDBClusters",
            Account::Target,
            vec![Request::new("rds:DescribeDBClusters", "*")],
        ),
    ]
}

/// The source cluster's parameter group: in the source account.
fn source_cluster_pg(subs: &Substitutions, source_cluster: &str) -> String {
    let account = source_cluster.split(':').nth(4).unwrap_or(&subs.account);
    format!(
        "arn:aws:rds:{}:{account}:cluster-pg:{DEFAULT_CLUSTER_PG}",
        subs.region
    )
}

/// `ControlPlane::create_clone`: look, restore (tagged), add the writer
/// (tagged).
pub fn create_clone(
    subs: &Substitutions,
    pipeline_id: &str,
    clone_id: &str,
    source_cluster: &str,
    clone: &clonesync::pipeline::CloneSettings,
) -> Vec<Call> {
    let cluster_pg = clone
        .db_cluster_parameter_group
        .as_deref()
        .unwrap_or(DEFAULT_CLUSTER_PG);
    let pg = clone.db_parameter_group.as_deref().unwrap_or(DEFAULT_PG);
    let subnet_group = clone.db_subnet_group.as_deref().unwrap_or(DEFAULT_SUBGRP);
    let cluster = rds_arn(subs, "cluster", clone_id);
    let writer = rds_arn(subs, "db", &writer_instance_id(clone_id));
    let restore = |resource: String| {
        tagging(
            Request::new("rds:RestoreDBClusterToPointInTime", resource),
            pipeline_id,
        )
    };
    let instance =
        |resource: String| tagging(Request::new("rds:CreateDBInstance", resource), pipeline_id);
    vec![
        describe_clone(subs, clone_id),
        call(
            "rds",
            "RestoreDBClusterToPointInTime",
            Account::Target,
            vec![
                restore(cluster.clone()),
                restore(source_cluster.to_string()),
                restore(rds_arn(subs, "cluster-pg", cluster_pg)),
                restore(rds_arn(subs, "og", DEFAULT_OG)),
                restore(rds_arn(subs, "subgrp", subnet_group)),
                tagging(
                    Request::new("rds:AddTagsToResource", cluster.clone()),
                    pipeline_id,
                ),
                // RDS checks the clone's subnet group and security groups
                // with the caller's credentials.
                Request::new("ec2:DescribeSubnets", "*"),
                Request::new("ec2:DescribeSecurityGroups", "*"),
                Request::new("ec2:DescribeVpcs", "*"),
            ],
        ),
        call(
            "rds",
            "CreateDBInstance",
            Account::Target,
            vec![
                instance(writer.clone()),
                instance(cluster),
                instance(rds_arn(subs, "pg", pg)),
                instance(rds_arn(subs, "og", DEFAULT_OG)),
                instance(rds_arn(subs, "subgrp", subnet_group)),
                tagging(Request::new("rds:AddTagsToResource", writer), pipeline_id),
            ],
        ),
    ]
}

/// `DescribeDBClusters` of the clone's cluster (every clone operation
/// looks first).
fn describe_clone(subs: &Substitutions, clone_id: &str) -> Call {
    call(
        "rds",
        "DescribeDBClusters",
        Account::Target,
        vec![Request::new(
            "rds:DescribeDBClusters",
            rds_arn(subs, "cluster", clone_id),
        )],
    )
}

/// `Clones::clone_status`: the cluster and its instances.
pub fn clone_status(subs: &Substitutions, clone_id: &str) -> Vec<Call> {
    vec![
        describe_clone(subs, clone_id),
        call(
            "rds",
            "DescribeDBInstances",
            Account::Target,
            vec![Request::new("rds:DescribeDBInstances", "*")],
        ),
    ]
}

/// `Clones::clone_exists`.
pub fn clone_exists(subs: &Substitutions, clone_id: &str) -> Vec<Call> {
    clone_status(subs, clone_id).into_iter().take(1).collect()
}

/// `ControlPlane::delete_clone`: look, delete the writer, then the cluster.
pub fn delete_clone(subs: &Substitutions, clone_id: &str) -> Vec<Call> {
    vec![
        describe_clone(subs, clone_id),
        call(
            "rds",
            "DeleteDBInstance",
            Account::Target,
            vec![Request::new(
                "rds:DeleteDBInstance",
                rds_arn(subs, "db", &writer_instance_id(clone_id)),
            )],
        ),
        call(
            "rds",
            "DeleteDBCluster",
            Account::Target,
            vec![Request::new(
                "rds:DeleteDBCluster",
                rds_arn(subs, "cluster", clone_id),
            )],
        ),
    ]
}

/// `ControlPlane::source_endpoint` (and `clone_endpoint` without a clone
/// secret): the source login, read in the source account. The local
/// source secret plays one under a customer-managed KMS key, the case a
/// deployment must allow for (AWS-BEHAVIOURS row 14): Secrets Manager
/// then decrypts it with the caller's own `kms:Decrypt`, through the
/// service (`kms:ViaService`), so the one call is two authorizations.
pub fn source_login(subs: &Substitutions) -> Vec<Call> {
    vec![call(
        "secretsmanager",
        "GetSecretValue",
        Account::Source,
        vec![
            Request::new(
                "secretsmanager:GetSecretValue",
                subs.source_secret_arn.clone(),
            ),
            Request::new("kms:Decrypt", secret_key_arn(subs)).with(
                "kms:ViaService",
                &[&format!("secretsmanager.{}.amazonaws.com", subs.region)],
            ),
        ],
    )]
}

/// The customer-managed key the local source secret plays being under.
pub fn secret_key_arn(subs: &Substitutions) -> String {
    format!(
        "arn:aws:kms:{}:{}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        subs.region, subs.account
    )
}

/// `ResourceShare::share_cluster` in the source account: look for the
/// share by name, then create it (tagged) or check a reused one's
/// associations.
pub fn share_cluster(
    subs: &Substitutions,
    pipeline_id: &str,
    cluster_arn: &str,
    created_now: bool,
) -> Vec<Call> {
    let mut calls = vec![call(
        "ram",
        "GetResourceShares",
        Account::Source,
        vec![Request::new("ram:GetResourceShares", "*")],
    )];
    if created_now {
        calls.push(call(
            "ram",
            "CreateResourceShare",
            Account::Source,
            vec![
                tagging(Request::new("ram:CreateResourceShare", "*"), pipeline_id)
                    .with("ram:RequestedResourceType", &["rds:Cluster"])
                    .with("ram:ResourceArn", &[cluster_arn])
                    .with("ram:Principal", &[&subs.account])
                    .with("ram:RequestedAllowsExternalPrincipals", &["true"]),
                // Tags given at creation need ram:TagResource too, which
                // carries no resource type.
                tagging(Request::new("ram:TagResource", "*"), pipeline_id),
            ],
        ));
    } else {
        calls.push(call(
            "ram",
            "GetResourceShareAssociations",
            Account::Source,
            vec![Request::new("ram:GetResourceShareAssociations", "*")],
        ));
    }
    calls
}

/// `ResourceShare::accept_share`: the invitation (target) and, to tell a
/// share in an organization, its associations (source).
pub fn accept_share(invitation_arn: &str) -> Vec<Call> {
    vec![
        call(
            "ram",
            "GetResourceShareInvitations",
            Account::Target,
            vec![Request::new("ram:GetResourceShareInvitations", "*")],
        ),
        call(
            "ram",
            "AcceptResourceShareInvitation",
            Account::Target,
            vec![Request::new(
                "ram:AcceptResourceShareInvitation",
                invitation_arn.to_string(),
            )],
        ),
        call(
            "ram",
            "GetResourceShareAssociations",
            Account::Source,
            vec![Request::new("ram:GetResourceShareAssociations", "*")],
        ),
    ]
}

/// `ResourceShare::share_of_invitation`.
pub fn share_of_invitation() -> Vec<Call> {
    vec![call(
        "ram",
        "GetResourceShareInvitations",
        Account::Target,
        vec![Request::new("ram:GetResourceShareInvitations", "*")],
    )]
}

/// `ResourceShare::delete_share`, in the source account, on a share
/// tagged with its pipeline.
pub fn delete_share(share_arn: &str, pipeline_id: &str) -> Vec<Call> {
    let request = Request::new("ram:DeleteResourceShare", share_arn.to_string())
        .with(&format!("aws:ResourceTag/{TAG_PIPELINE}"), &[pipeline_id])
        .with(&format!("ram:ResourceTag/{TAG_PIPELINE}"), &[pipeline_id]);
    vec![call(
        "ram",
        "DeleteResourceShare",
        Account::Source,
        vec![request],
    )]
}
