//! The RDS control plane against modeled RDS answers: the clone request,
//! its idempotency by tag, conflicts, preflight facts, readiness, deletion.

use aws_sdk_rds::operation::create_db_instance::{CreateDBInstanceError, CreateDbInstanceOutput};
use aws_sdk_rds::operation::delete_db_cluster::DeleteDbClusterOutput;
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_cluster_parameters::DescribeDbClusterParametersOutput;
use aws_sdk_rds::operation::describe_db_clusters::{
    DescribeDBClustersError, DescribeDbClustersOutput,
};
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::restore_db_cluster_to_point_in_time::{
    RestoreDBClusterToPointInTimeError, RestoreDbClusterToPointInTimeOutput,
};
use aws_sdk_rds::types::error::{
    DbClusterAlreadyExistsFault, DbClusterNotFoundFault, DbInstanceAlreadyExistsFault,
};
use aws_sdk_rds::types::{DbCluster, DbClusterMember, DbInstance, Parameter, Tag};
use aws_sdk_rds::Client;
use aws_smithy_mocks::{mock, Rule};
use clonesync::aws::rds::AwsControlPlane;
use clonesync::aws::{AwsClients, Settings};
use clonesync::pipeline::names::{TAG_PIPELINE, TAG_SOURCE_CLUSTER};
use clonesync::pipeline::CloneInfo;
use clonesync::ports::ControlPlane;
use clonesync_tests::aws_mock::{
    coded, orders_plane, settings, MockRules, CLUSTER_ARN, SECRET_ARN,
};

fn plane<'a>(
    clients: &'a AwsClients,
    settings: &'a Settings,
    kms: Option<&str>,
) -> AwsControlPlane<'a> {
    orders_plane(clients, settings, CLUSTER_ARN, kms)
}

const CLONE_ID: &str = "clonesync-orders-dev";

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn clone_cluster(owner: Option<&str>, status: &str) -> DbCluster {
    clone_cluster_builder(owner, status).build()
}

fn clone_cluster_builder(
    owner: Option<&str>,
    status: &str,
) -> aws_sdk_rds::types::builders::DbClusterBuilder {
    let mut b = DbCluster::builder()
        .db_cluster_identifier(CLONE_ID)
        .status(status)
        .endpoint("clonesync-orders-dev.cluster-abc.eu-west-1.rds.amazonaws.com")
        .port(5432)
        .tag_list(tag(TAG_SOURCE_CLUSTER, CLUSTER_ARN));
    if let Some(owner) = owner {
        b = b.tag_list(tag(TAG_PIPELINE, owner));
    }
    b
}

fn writer(status: &str, owner: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(format!("{CLONE_ID}-writer"))
        .db_cluster_identifier(CLONE_ID)
        .db_instance_status(status)
        .tag_list(tag(TAG_PIPELINE, owner))
        .build()
}

fn describe_clone(owner: Option<&'static str>, status: &'static str) -> Rule {
    mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some(CLONE_ID))
        .then_output(move || {
            DescribeDbClustersOutput::builder()
                .db_clusters(clone_cluster(owner, status))
                .build()
        })
}

/// Our clone's cluster: not found at the first look (before the restore),
/// then `owner`'s, in `status`, from then on.
fn appears(owner: &'static str, status: &'static str) -> Rule {
    mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some(CLONE_ID))
        .sequence()
        .error(not_found)
        .output(move || found(owner, status))
        .repeatedly()
        .build()
}

/// [`appears`] answering whatever cluster is asked for.
fn appears_unscoped(owner: &'static str, status: &'static str) -> Rule {
    mock!(Client::describe_db_clusters)
        .sequence()
        .error(not_found)
        .output(move || found(owner, status))
        .repeatedly()
        .build()
}

fn not_found() -> DescribeDBClustersError {
    DescribeDBClustersError::DbClusterNotFoundFault(DbClusterNotFoundFault::builder().build())
}

fn found(owner: &str, status: &str) -> DescribeDbClustersOutput {
    DescribeDbClustersOutput::builder()
        .db_clusters(clone_cluster(Some(owner), status))
        .build()
}

fn no_clone_yet() -> Rule {
    mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some(CLONE_ID))
        .then_error(|| {
            DescribeDBClustersError::DbClusterNotFoundFault(
                DbClusterNotFoundFault::builder().build(),
            )
        })
}

fn describe_writer(status: &'static str) -> Rule {
    mock!(Client::describe_db_instances).then_output(move || {
        DescribeDbInstancesOutput::builder()
            .db_instances(writer(status, "orders_dev"))
            .build()
    })
}

/// RDS as documented: a restored cluster is `creating` for a while, and
/// "you can create DB instances only after RestoreDBClusterToPointInTime
/// has completed and the DB cluster is available" (RDS API reference). The
/// step answers `Clone.NotReady` (retried by the state machine) until the
/// cluster is available, and only then requests the writer.
#[tokio::test]
async fn the_clone_is_a_tagged_copy_on_write_restore_then_a_writer_once_the_cluster_is_available() {
    let describe = mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some(CLONE_ID))
        .sequence()
        .error(|| {
            DescribeDBClustersError::DbClusterNotFoundFault(
                DbClusterNotFoundFault::builder().build(),
            )
        })
        .output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(clone_cluster(Some("orders_dev"), "creating"))
                .build()
        })
        .output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(clone_cluster(Some("orders_dev"), "available"))
                .build()
        })
        .repeatedly()
        .build();
    let restore = mock!(Client::restore_db_cluster_to_point_in_time)
        .match_requests(|r| {
            r.db_cluster_identifier() == Some(CLONE_ID)
                && r.source_db_cluster_identifier() == Some(CLUSTER_ARN)
                && r.restore_type() == Some("copy-on-write")
                && r.use_latest_restorable_time() == Some(true)
                && r.kms_key_id() == Some("key-in-target")
                && r.db_subnet_group_name() == Some("private")
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some(TAG_PIPELINE) && t.value() == Some("orders_dev"))
        })
        .then_output(|| {
            RestoreDbClusterToPointInTimeOutput::builder()
                .db_cluster(clone_cluster(Some("orders_dev"), "creating"))
                .build()
        });
    let instance = mock!(Client::create_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("clonesync-orders-dev-writer")
                && r.db_cluster_identifier() == Some(CLONE_ID)
                && r.engine() == Some("aurora-postgresql")
                && r.db_instance_class() == Some("db.r6g.large")
        })
        .then_output(|| CreateDbInstanceOutput::builder().build());
    let clients = MockRules {
        rds: vec![&describe, &restore, &instance],
        ..Default::default()
    }
    .clients();
    let settings = settings();
    let plane = plane(&clients, &settings, Some("key-in-target"));
    // The restore is requested; the cluster is creating: no instance yet.
    let first = plane.create_clone(CLONE_ID).await.unwrap_err();
    assert_eq!(first.name(), "Clone.NotReady", "{first}");
    assert_eq!((restore.num_calls(), instance.num_calls()), (1, 0));
    // Retried while it is still creating: no second restore, no instance.
    let second = plane.create_clone(CLONE_ID).await.unwrap_err();
    assert_eq!(second.name(), "Clone.NotReady", "{second}");
    assert_eq!((restore.num_calls(), instance.num_calls()), (1, 0));
    // Available: the writer is requested, once.
    let info = plane.create_clone(CLONE_ID).await.unwrap();
    assert_eq!(info.clone_id, CLONE_ID);
    assert_eq!(info.port, 5432);
    assert!(info.host.starts_with("clonesync-orders-dev.cluster-"));
    assert_eq!((restore.num_calls(), instance.num_calls()), (1, 1));
}

/// CreateDBInstance on a cluster that is not in a state for it (it left
/// `available` between the look and the request) is `Clone.NotReady`,
/// asked again by the state machine, not a failed setup.
#[tokio::test]
async fn an_instance_refused_for_the_clusters_state_is_not_ready_not_failed() {
    use aws_sdk_rds::types::error::InvalidDbClusterStateFault;
    let describe = describe_clone(Some("orders_dev"), "available");
    let refused = mock!(Client::create_db_instance).then_error(|| {
        CreateDBInstanceError::InvalidDbClusterStateFault(
            InvalidDbClusterStateFault::builder().build(),
        )
    });
    let clients = MockRules {
        rds: vec![&describe, &refused],
        ..Default::default()
    }
    .clients();
    let settings = settings();
    let err = plane(&clients, &settings, None)
        .create_clone(CLONE_ID)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Clone.NotReady", "{err}");
    assert_eq!(refused.num_calls(), 1);
}

#[tokio::test]
async fn asking_again_for_our_clone_is_success_without_a_second_restore() {
    let restore = mock!(Client::restore_db_cluster_to_point_in_time)
        .then_output(|| RestoreDbClusterToPointInTimeOutput::builder().build());
    let instance_exists = mock!(Client::create_db_instance).then_error(|| {
        CreateDBInstanceError::DbInstanceAlreadyExistsFault(
            DbInstanceAlreadyExistsFault::builder().build(),
        )
    });
    let describe = describe_clone(Some("orders_dev"), "available");
    let describe_instance = describe_writer("creating");
    let clients = MockRules {
        rds: vec![&restore, &instance_exists, &describe, &describe_instance],
        ..Default::default()
    }
    .clients();
    let settings = settings();
    let info = plane(&clients, &settings, None)
        .create_clone(CLONE_ID)
        .await
        .unwrap();
    assert_eq!(info.clone_id, CLONE_ID);
    assert_eq!(restore.num_calls(), 0);
}

#[tokio::test]
async fn losing_a_race_to_create_our_clone_is_success() {
    let describe = appears_unscoped("orders_dev", "available");
    let exists = mock!(Client::restore_db_cluster_to_point_in_time).then_error(|| {
        RestoreDBClusterToPointInTimeError::DbClusterAlreadyExistsFault(
            DbClusterAlreadyExistsFault::builder().build(),
        )
    });
    let instance_exists = mock!(Client::create_db_instance).then_error(|| {
        CreateDBInstanceError::DbInstanceAlreadyExistsFault(
            DbInstanceAlreadyExistsFault::builder().build(),
        )
    });
    let describe_instance = describe_writer("creating");
    let clients = MockRules {
        rds: vec![&describe, &exists, &instance_exists, &describe_instance],
        ..Default::default()
    }
    .clients();
    let settings = settings();
    let info = plane(&clients, &settings, None)
        .create_clone(CLONE_ID)
        .await
        .unwrap();
    assert_eq!(info.clone_id, CLONE_ID);
    assert_eq!(exists.num_calls(), 1);
}

#[tokio::test]
async fn a_cluster_of_that_name_not_ours_is_a_conflict_and_gets_no_instance() {
    let exists = mock!(Client::restore_db_cluster_to_point_in_time).then_error(|| {
        RestoreDBClusterToPointInTimeError::DbClusterAlreadyExistsFault(
            DbClusterAlreadyExistsFault::builder().build(),
        )
    });
    let describe = describe_clone(Some("someone_else"), "available");
    let instance =
        mock!(Client::create_db_instance).then_output(|| CreateDbInstanceOutput::builder().build());
    let clients = MockRules {
        rds: vec![&exists, &describe, &instance],
        ..Default::default()
    }
    .clients();
    let settings = settings();
    let err = plane(&clients, &settings, None)
        .create_clone(CLONE_ID)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Clone.Conflict");
    assert_eq!((exists.num_calls(), instance.num_calls()), (0, 0));

    // The same when the other cluster appears between our look and our restore.
    let describe = appears_unscoped("someone_else", "creating");
    let clients = MockRules {
        rds: vec![&exists, &describe, &instance],
        ..Default::default()
    }
    .clients();
    let err = plane(&clients, &settings, None)
        .create_clone(CLONE_ID)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Clone.Conflict");
    assert_eq!((exists.num_calls(), instance.num_calls()), (1, 0));
}

/// Right after the invitation is accepted, the shared cluster reads as not
/// found until RAM has associated the share (Aurora guide): not ready,
/// asked again (bounded by the state machine), naming the RAM share.
#[tokio::test]
async fn a_source_not_visible_yet_is_not_ready_and_throttling_is_transient() {
    let absent = no_clone_yet();
    let not_found = mock!(Client::restore_db_cluster_to_point_in_time).then_error(|| {
        RestoreDBClusterToPointInTimeError::DbClusterNotFoundFault(
            DbClusterNotFoundFault::builder().build(),
        )
    });
    let clients = MockRules {
        rds: vec![&absent, &not_found],
        ..Default::default()
    }
    .clients();
    let settings = settings();
    let err = plane(&clients, &settings, None)
        .create_clone(CLONE_ID)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Clone.NotReady");
    assert!(err.is_transient());
    assert!(err.to_string().contains("RAM share"), "{err}");

    let throttled = mock!(Client::restore_db_cluster_to_point_in_time)
        .then_error(|| RestoreDBClusterToPointInTimeError::generic(coded("Throttling")));
    let clients = MockRules {
        rds: vec![&absent, &throttled],
        ..Default::default()
    }
    .clients();
    let err = plane(&clients, &settings, None)
        .create_clone(CLONE_ID)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Transient.Aws");

    let denied = mock!(Client::restore_db_cluster_to_point_in_time)
        .then_error(|| RestoreDBClusterToPointInTimeError::generic(coded("AccessDenied")));
    let clients = MockRules {
        rds: vec![&absent, &denied],
        ..Default::default()
    }
    .clients();
    let err = plane(&clients, &settings, None)
        .create_clone(CLONE_ID)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Aws.AccessDenied");
}

fn source_cluster(version: &str, encrypted: bool, status: &str) -> DbCluster {
    let mut b = DbCluster::builder()
        .db_cluster_identifier("orders-prod")
        .db_cluster_arn(CLUSTER_ARN)
        .engine("aurora-postgresql")
        .engine_version(version)
        .status(status)
        .db_cluster_parameter_group("orders-pg")
        .endpoint("orders-prod.cluster-xyz.eu-west-1.rds.amazonaws.com")
        .port(5432)
        .storage_encrypted(encrypted)
        .db_cluster_members(
            DbClusterMember::builder()
                .db_instance_identifier("orders-prod-1")
                .is_cluster_writer(true)
                .build(),
        );
    if encrypted {
        b = b.kms_key_id("arn:aws:kms:eu-west-1:111122223333:key/abc");
    }
    b.build()
}

async fn preflight_with(
    source: DbCluster,
    logical: &'static str,
    target_clusters: Vec<DbCluster>,
    kms: Option<&str>,
) -> Vec<String> {
    preflight_rotating(source, logical, target_clusters, kms, None, None).await
}

/// A passing preflight whose SDK operations `sent` records.
async fn preflight_recording(source: DbCluster, sent: &clonesync_tests::aws_mock::Operations) {
    let failures = preflight_rotating(source, "1", vec![], None, None, Some(sent)).await;
    assert!(failures.is_empty(), "{failures:?}");
}

/// Preflight with the source login's secret rotating every `rotation`
/// days (`None`: not rotating).
async fn preflight_rotating(
    source: DbCluster,
    logical: &'static str,
    target_clusters: Vec<DbCluster>,
    kms: Option<&str>,
    rotation: Option<i64>,
    sent: Option<&clonesync_tests::aws_mock::Operations>,
) -> Vec<String> {
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    use aws_sdk_secretsmanager::types::RotationRulesType;
    let describe_secret = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(
        move || match rotation {
            Some(days) => DescribeSecretOutput::builder()
                .rotation_enabled(true)
                .rotation_rules(
                    RotationRulesType::builder()
                        .automatically_after_days(days)
                        .build(),
                )
                .build(),
            None => DescribeSecretOutput::builder().build(),
        },
    );
    let describe_source = mock!(Client::describe_db_clusters)
        .match_requests(|r| r.db_cluster_identifier() == Some(CLUSTER_ARN))
        .then_output(move || {
            DescribeDbClustersOutput::builder()
                .db_clusters(source.clone())
                .build()
        });
    let params = mock!(Client::describe_db_cluster_parameters)
        .match_requests(|r| r.db_cluster_parameter_group_name() == Some("orders-pg"))
        .then_output(move || {
            DescribeDbClusterParametersOutput::builder()
                .parameters(
                    Parameter::builder()
                        .parameter_name("rds.logical_replication")
                        .parameter_value(logical)
                        .build(),
                )
                .build()
        });
    let list_target = mock!(Client::describe_db_clusters).then_output(move || {
        DescribeDbClustersOutput::builder()
            .set_db_clusters(Some(target_clusters.clone()))
            .build()
    });
    let rules = MockRules {
        source_rds: vec![&describe_source, &params],
        source_secrets: vec![&describe_secret],
        rds: vec![&list_target],
        ..Default::default()
    };
    let clients = match sent {
        Some(sent) => rules.clients_recording(sent),
        None => rules.clients(),
    };
    let settings = settings();
    let failures = plane(&clients, &settings, kms).preflight().await.unwrap();
    failures.into_iter().map(|f| f.check).collect()
}

#[tokio::test]
async fn preflight_passes_a_suitable_cluster() {
    let checks = preflight_with(
        source_cluster("15.4", false, "available"),
        "1",
        vec![],
        None,
    )
    .await;
    assert!(checks.is_empty(), "{checks:?}");
    // Our own clone from an earlier run is not an "earlier clone".
    let checks = preflight_with(
        source_cluster("16.2", true, "available"),
        "1",
        vec![clone_cluster(Some("orders_dev"), "available")],
        Some("k"),
    )
    .await;
    assert!(checks.is_empty(), "{checks:?}");
}

#[tokio::test]
async fn preflight_lists_every_control_plane_problem_at_once() {
    let checks = preflight_with(
        source_cluster("15.1", true, "modifying"),
        "0",
        vec![clone_cluster(Some("other_pipeline"), "available")],
        None,
    )
    .await;
    for expected in [
        "engine_version",
        "cluster_status",
        "rds_logical_replication",
        "kms_key",
        "earlier_clone",
    ] {
        assert!(
            checks.iter().any(|c| c == expected),
            "{expected} missing from {checks:?}"
        );
    }
}

/// RDS-managed master secrets rotate every 7 days by default. A rotating
/// login is accepted: the clone's copy of the role and the subscription's
/// connection follow each new version (`steps::follow_rotation`).
#[tokio::test]
async fn preflight_accepts_a_source_login_whose_secret_rotates() {
    let checks = preflight_rotating(
        source_cluster("15.4", false, "available"),
        "1",
        vec![],
        None,
        Some(7),
        None,
    )
    .await;
    assert!(checks.is_empty(), "{checks:?}");
}

fn secret_version(
    stage: Option<&'static str>,
    password: &'static str,
    version: &'static str,
) -> Rule {
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .match_requests(move |r| r.secret_id() == Some(SECRET_ARN) && r.version_stage() == stage)
        .then_output(move || {
            GetSecretValueOutput::builder()
                .arn(SECRET_ARN)
                .version_id(version)
                .secret_string(format!(r#"{{"username":"repl","password":"{password}"}}"#))
                .build()
        })
}

/// After a rotation the clone still has the source's old password: the
/// previous version (`AWSPREVIOUS`) is the clone's login, at the clone's
/// address; a secret that never rotated has none (Secrets Manager answers
/// ResourceNotFoundException for the stage), and a clone with a secret of
/// its own is never logged in to with the source's.
#[tokio::test]
async fn the_previous_source_login_is_the_clones_until_it_follows_a_rotation() {
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    let clone = CloneInfo {
        clone_id: CLONE_ID.into(),
        host: "clone.example".into(),
        port: 5433,
    };
    let current = secret_version(None, "new-pw", "v2");
    let previous = secret_version(Some("AWSPREVIOUS"), "old-pw", "v1");
    let rules = MockRules {
        source_secrets: vec![&current, &previous],
        ..Default::default()
    };
    let clients = rules.clients();
    let settings = settings();
    let mut plane = plane(&clients, &settings, None);
    plane.source.host = Some("source.example".into());
    let login = plane.source_login().await.unwrap();
    assert_eq!(login.version, "v2");
    assert_eq!(login.endpoint.password.unwrap().expose(), "new-pw");
    let old = plane
        .previous_clone_endpoint(&clone)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (old.host.as_str(), old.port, old.user.as_str()),
        ("clone.example", 5433, "repl")
    );
    assert_eq!(old.password.unwrap().expose(), "old-pw");

    let never_rotated = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .match_requests(|r| r.version_stage() == Some("AWSPREVIOUS"))
        .then_error(|| {
            GetSecretValueError::ResourceNotFoundException(
                aws_sdk_secretsmanager::types::error::ResourceNotFoundException::builder()
                    .message("Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS")
                    .build(),
            )
        });
    let rules = MockRules {
        source_secrets: vec![&never_rotated],
        ..Default::default()
    };
    let clients = rules.clients();
    assert!(plane_with(&clients, &settings)
        .previous_clone_endpoint(&clone)
        .await
        .unwrap()
        .is_none());

    // Its own secret: not a single call to the source's.
    let sent = clonesync_tests::aws_mock::Operations::default();
    let clients = MockRules::default().clients_recording(&sent);
    let mut own = plane_with(&clients, &settings);
    own.clone.secret_arn =
        Some("arn:aws:secretsmanager:eu-west-1:444455556666:secret:clone-AbCdEf".into());
    assert!(own.previous_clone_endpoint(&clone).await.unwrap().is_none());
    assert!(sent.sent().is_empty(), "{:?}", sent.sent());
}

fn plane_with<'a>(clients: &'a AwsClients, settings: &'a Settings) -> AwsControlPlane<'a> {
    plane(clients, settings, None)
}

/// RDS allows one cross-account clone of a cluster per target account: a
/// clone of the source made by hand (no clonesync tag) is found by its
/// clone group; a cross-account clone of another cluster is not.
#[tokio::test]
async fn preflight_names_an_untagged_cross_account_clone_of_the_source() {
    let mut source = source_cluster("15.4", false, "available");
    source.clone_group_id = Some("group-of-orders".into());
    let by_hand = |group: &str| {
        DbCluster::builder()
            .db_cluster_identifier("made-by-hand")
            .status("available")
            .cross_account_clone(true)
            .clone_group_id(group)
            .build()
    };
    let checks = preflight_with(source.clone(), "1", vec![by_hand("group-of-orders")], None).await;
    assert_eq!(checks, ["earlier_clone"]);
    let checks = preflight_with(source, "1", vec![by_hand("another-group")], None).await;
    assert!(checks.is_empty(), "{checks:?}");
}

#[tokio::test]
async fn preflight_names_a_cluster_in_another_region_or_invisible() {
    let describe_none = mock!(Client::describe_db_clusters).then_error(|| {
        DescribeDBClustersError::DbClusterNotFoundFault(DbClusterNotFoundFault::builder().build())
    });
    let clients = MockRules {
        source_rds: vec![&describe_none],
        ..Default::default()
    }
    .clients();
    let mut settings = settings();
    settings.region = "us-east-1".into();
    let checks: Vec<String> = plane(&clients, &settings, None)
        .preflight()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.check)
        .collect();
    assert_eq!(checks, ["same_region", "source_cluster"]);
}

#[tokio::test]
async fn the_clone_is_ready_only_when_cluster_and_writer_are_available() {
    let settings = settings();
    for (cluster, instance, ready) in [
        ("creating", "creating", false),
        ("available", "creating", false),
        ("available", "available", true),
    ] {
        let describe = describe_clone(Some("orders_dev"), cluster);
        let instances = describe_writer(instance);
        let clients = MockRules {
            rds: vec![&describe, &instances],
            ..Default::default()
        }
        .clients();
        let result = plane(&clients, &settings, None)
            .clone_status(CLONE_ID)
            .await;
        match (result, ready) {
            (Ok(info), true) => assert_eq!(info.port, 5432),
            (Err(e), false) => assert_eq!(e.name(), "Clone.NotReady"),
            (other, _) => panic!("{cluster}/{instance}: {other:?}"),
        }
    }
    let failed = describe_clone(Some("orders_dev"), "failed");
    let instances = describe_writer("failed");
    let clients = MockRules {
        rds: vec![&failed, &instances],
        ..Default::default()
    }
    .clients();
    let err = plane(&clients, &settings, None)
        .clone_status(CLONE_ID)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Clone.Failed");
}

#[tokio::test]
async fn deletion_removes_only_our_clone_and_is_idempotent() {
    let settings = settings();
    let member = |owner: Option<&'static str>| {
        mock!(Client::describe_db_clusters).then_output(move || {
            let c = clone_cluster_builder(owner, "available").db_cluster_members(
                DbClusterMember::builder()
                    .db_instance_identifier(format!("{CLONE_ID}-writer"))
                    .build(),
            );
            DescribeDbClustersOutput::builder()
                .db_clusters(c.build())
                .build()
        })
    };
    let ours = member(Some("orders_dev"));
    let del_instance = mock!(Client::delete_db_instance)
        .match_requests(|r| r.skip_final_snapshot() == Some(true))
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let del_cluster = mock!(Client::delete_db_cluster)
        .match_requests(|r| {
            r.db_cluster_identifier() == Some(CLONE_ID) && r.skip_final_snapshot() == Some(true)
        })
        .then_output(|| DeleteDbClusterOutput::builder().build());
    let clients = MockRules {
        rds: vec![&ours, &del_instance, &del_cluster],
        ..Default::default()
    }
    .clients();
    assert!(plane(&clients, &settings, None)
        .delete_clone(CLONE_ID)
        .await
        .unwrap());
    assert_eq!((del_instance.num_calls(), del_cluster.num_calls()), (1, 1));

    let gone = mock!(Client::describe_db_clusters).then_error(|| {
        DescribeDBClustersError::DbClusterNotFoundFault(DbClusterNotFoundFault::builder().build())
    });
    let clients = MockRules {
        rds: vec![&gone],
        ..Default::default()
    }
    .clients();
    assert!(!plane(&clients, &settings, None)
        .delete_clone(CLONE_ID)
        .await
        .unwrap());

    let theirs = member(None);
    let del_cluster =
        mock!(Client::delete_db_cluster).then_output(|| DeleteDbClusterOutput::builder().build());
    let clients = MockRules {
        rds: vec![&theirs, &del_cluster],
        ..Default::default()
    }
    .clients();
    let deleted = plane(&clients, &settings, None)
        .delete_clone(CLONE_ID)
        .await
        .unwrap();
    assert!(!deleted, "a cluster without our tag is not ours to delete");
    assert_eq!(del_cluster.num_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clone_without_the_aurora_function_is_named_not_guessed() {
    let server = clonesync_tests::TestServer::start().await;
    let client = server.client().await;
    let err = clonesync::aws::rds::aurora_start_lsn(CLONE_ID, &client)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Clone.Failed");
    assert!(err.to_string().contains("15.2"), "{err}");
}

/// A registry answer holding the inventory of `orders_dev`.
fn registered(setup_execution: Option<&'static str>) -> Rule {
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
        let record = clonesync::pipeline::PipelineRecord {
            pipeline: clonesync::pipeline::PipelineSpec::with_defaults(
                "orders_dev",
                clonesync::pipeline::Scope::AllTables,
            )
            .unwrap(),
            source: plane(&MockRules::default().clients(), &settings(), None).source,
            clone: plane(&MockRules::default().clients(), &settings(), None).clone,
            clone_id: Some(CLONE_ID.into()),
            clone_info: None,
            share: None,
            setup_execution: setup_execution.map(str::to_string),
            phase: clonesync::pipeline::Phase::SettingUp,
            registered_at: 1,
            triples: vec![],
            apply_groups: 1,
        };
        GetItemOutput::builder()
            .item(
                "record",
                AttributeValue::S(serde_json::to_string(&record).unwrap()),
            )
            .build()
    })
}

/// Teardown's first step against the AWS adapters: a `delete_clone` of a
/// cluster of the clone's name that this pipeline did not tag is
/// `Clone.Conflict`, and a setup still running is `Pipeline.SetupRunning`,
/// both before anything is touched (no Delete* call has a rule: one
/// would fail the test with another error).
#[tokio::test]
async fn teardown_refuses_a_clone_not_ours_and_a_running_setup_before_touching_anything() {
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    use aws_sdk_sfn::types::ExecutionStatus;
    use clonesync::workflow::lifecycle;
    let record = registered(Some(
        "arn:aws:states:eu-west-1:444455556666:execution:s:setup-1",
    ));
    let finished = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
        DescribeExecutionOutput::builder()
            .execution_arn("arn:aws:states:eu-west-1:444455556666:execution:s:setup-1")
            .state_machine_arn("arn:aws:states:eu-west-1:444455556666:stateMachine:s")
            .status(ExecutionStatus::Failed)
            .start_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
            .build()
            .unwrap()
    });
    let theirs = describe_clone(Some("someone_else"), "available");
    let cloud = clonesync::aws::AwsCloud {
        settings: settings(),
        clients: MockRules {
            dynamodb: vec![&record],
            sfn: vec![&finished],
            rds: vec![&theirs],
            ..Default::default()
        }
        .clients(),
    };
    let error = lifecycle::load(
        &cloud,
        serde_json::json!({"pipeline_id": "orders_dev", "delete_clone": true}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.name(), "Clone.Conflict", "{error}");
    // Without delete_clone the foreign cluster is no reason to stop.
    let teardown = lifecycle::load(&cloud, serde_json::json!({"pipeline_id": "orders_dev"}))
        .await
        .unwrap();
    assert!(!teardown.delete_clone && !teardown.delete_share);

    let running = mock!(aws_sdk_sfn::Client::describe_execution).then_output(|| {
        DescribeExecutionOutput::builder()
            .execution_arn("arn:aws:states:eu-west-1:444455556666:execution:s:setup-1")
            .state_machine_arn("arn:aws:states:eu-west-1:444455556666:stateMachine:s")
            .status(ExecutionStatus::Running)
            .start_date(aws_sdk_sfn::primitives::DateTime::from_secs(0))
            .build()
            .unwrap()
    });
    let cloud = clonesync::aws::AwsCloud {
        settings: settings(),
        clients: MockRules {
            dynamodb: vec![&record],
            sfn: vec![&running],
            ..Default::default()
        }
        .clients(),
    };
    let error = lifecycle::load(&cloud, serde_json::json!({"pipeline_id": "orders_dev"}))
        .await
        .unwrap_err();
    assert_eq!(error.name(), "Pipeline.SetupRunning", "{error}");
}

/// The local IAM check authorizes, for each control-plane operation the
/// local cloud plays, the calls listed in `clonesync_local::iam::calls`.
/// Those lists must be the operations the RDS adapter really sends: a
/// clone requested then completed, a deletion, a preflight.
#[tokio::test]
async fn the_local_iam_model_lists_every_call_the_rds_adapter_sends() {
    use clonesync_local::iam::calls;
    use clonesync_tests::aws_mock::{iam_substitutions, listed as names, Operations};
    let subs = iam_substitutions();
    let settings = settings();

    // The clone: restored (creating), then the writer once available.
    let describe = appears("orders_dev", "available");
    let restore = mock!(Client::restore_db_cluster_to_point_in_time).then_output(|| {
        RestoreDbClusterToPointInTimeOutput::builder()
            .db_cluster(clone_cluster(Some("orders_dev"), "creating"))
            .build()
    });
    let instance =
        mock!(Client::create_db_instance).then_output(|| CreateDbInstanceOutput::builder().build());
    let sent = Operations::default();
    let clients = MockRules {
        rds: vec![&describe, &restore, &instance],
        ..Default::default()
    }
    .clients_recording(&sent);
    let cloning = plane(&clients, &settings, None);
    assert_eq!(
        cloning.create_clone(CLONE_ID).await.unwrap_err().name(),
        "Clone.NotReady"
    );
    cloning.create_clone(CLONE_ID).await.unwrap();
    let listed = names(calls::create_clone(
        &subs,
        "orders_dev",
        CLONE_ID,
        CLUSTER_ARN,
        &cloning.clone,
    ));
    assert_eq!(sent.sent(), listed, "create_clone");

    // The deletion: the writer, then the cluster.
    let member = mock!(Client::describe_db_clusters).then_output(|| {
        let c = clone_cluster_builder(Some("orders_dev"), "available").db_cluster_members(
            DbClusterMember::builder()
                .db_instance_identifier(format!("{CLONE_ID}-writer"))
                .build(),
        );
        DescribeDbClustersOutput::builder()
            .db_clusters(c.build())
            .build()
    });
    let del_instance =
        mock!(Client::delete_db_instance).then_output(|| DeleteDbInstanceOutput::builder().build());
    let del_cluster =
        mock!(Client::delete_db_cluster).then_output(|| DeleteDbClusterOutput::builder().build());
    let sent = Operations::default();
    let clients = MockRules {
        rds: vec![&member, &del_instance, &del_cluster],
        ..Default::default()
    }
    .clients_recording(&sent);
    assert!(plane(&clients, &settings, None)
        .delete_clone(CLONE_ID)
        .await
        .unwrap());
    assert_eq!(
        sent.sent(),
        names(calls::delete_clone(&subs, CLONE_ID)),
        "delete_clone"
    );

    // Preflight: every check that reaches AWS.
    let sent = Operations::default();
    preflight_recording(source_cluster("15.4", false, "available"), &sent).await;
    assert_eq!(
        sent.sent(),
        names(calls::preflight(&subs, CLUSTER_ARN)),
        "preflight"
    );
}
