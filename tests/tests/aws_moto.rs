//! Adapters against moto's server: Secrets Manager, the DynamoDB registry,
//! the same-account copy-on-write clone, and the RDS event handler waking a
//! waiting clone. (moto implements neither RAM invitations nor cross-account
//! restore: those are covered with mocks in aws_ram.rs / aws_events.rs.)

use aws_sdk_rds::types::Tag;
use clonesync::aws::rds::AwsControlPlane;
use clonesync::aws::registry::Registry;
use clonesync::aws::secrets::{fetch_login, fetch_previous_login};
use clonesync::aws::{AwsClients, Settings};
use clonesync::handlers::on_rds_event;
use clonesync::pipeline::names::TAG_PIPELINE;
use clonesync::pipeline::CloneInfo;
use clonesync::pipeline::CloneSettings;
use clonesync::pipeline::PipelineSpec;
use clonesync::pipeline::Scope;
use clonesync::pipeline::{PipelineRecord, Wait, WaitKind};
use clonesync::ports::ControlPlane;
use clonesync_tests::aws_mock::orders_plane;
use clonesync_tests::moto::{Moto, ACCOUNT, REGION, TABLE};
use std::time::Duration;

const CANARY: &str = "canary-Zq8w-pass";

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/fixtures/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn source_cluster(clients: &AwsClients) -> String {
    use aws_sdk_rds::types::{ApplyMethod, Parameter};
    clients
        .rds
        .create_db_cluster_parameter_group()
        .db_cluster_parameter_group_name("orders-pg")
        .db_parameter_group_family("aurora-postgresql15")
        .description("logical replication on")
        .send()
        .await
        .unwrap();
    clients
        .rds
        .modify_db_cluster_parameter_group()
        .db_cluster_parameter_group_name("orders-pg")
        .parameters(
            Parameter::builder()
                .parameter_name("rds.logical_replication")
                .parameter_value("1")
                .apply_method(ApplyMethod::PendingReboot)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let cluster = clients
        .rds
        .create_db_cluster()
        .db_cluster_identifier("orders-prod")
        .db_cluster_parameter_group_name("orders-pg")
        .engine("aurora-postgresql")
        .engine_version("15.4")
        .master_username("postgres")
        .master_user_password("not-the-canary-1")
        .send()
        .await
        .unwrap();
    clients
        .rds
        .create_db_instance()
        .db_instance_identifier("orders-prod-1")
        .db_cluster_identifier("orders-prod")
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .unwrap();
    cluster
        .db_cluster()
        .unwrap()
        .db_cluster_arn()
        .unwrap()
        .to_string()
}

fn plane<'a>(
    clients: &'a AwsClients,
    settings: &'a Settings,
    cluster_arn: &str,
) -> AwsControlPlane<'a> {
    AwsControlPlane {
        clone: CloneSettings {
            db_subnet_group: None,
            security_group_ids: vec![],
            // moto has no such groups: its defaults.
            db_cluster_parameter_group: None,
            db_parameter_group: None,
            ..orders_plane(clients, settings, cluster_arn, None).clone
        },
        ..orders_plane(clients, settings, cluster_arn, None)
    }
}

#[tokio::test]
async fn secrets_are_read_by_arn_and_never_shown() {
    let moto = Moto::start();
    let clients = moto.clients().await;
    let made = clients
        .secrets
        .create_secret()
        .name("clonesync/orders-repl")
        .secret_string(format!(
            r#"{{"username":"repl","password":"{CANARY}","port":5432,"dbname":"orders"}}"#
        ))
        .send()
        .await
        .unwrap();
    let arn = made.arn().unwrap();
    let login = fetch_login(&clients.secrets, arn).await.unwrap();
    assert_eq!(login.username, "repl");
    assert_eq!(login.password.expose(), CANARY);
    assert_eq!(login.port, Some(5432));
    assert!(!format!("{login:?}").contains(CANARY));
    assert!(!format!("{:?}", login.endpoint("h", 5432, "orders")).contains(CANARY));
    assert_eq!(login.version, made.version_id().unwrap());
    // Never rotated: no previous version.
    assert!(fetch_previous_login(&clients.secrets, arn)
        .await
        .unwrap()
        .is_none());
    // A new version (what a rotation's last step leaves): it is current,
    // the one it replaced is AWSPREVIOUS.
    let rotated = clients
        .secrets
        .put_secret_value()
        .secret_id(arn)
        .secret_string(r#"{"username":"repl","password":"next-pw"}"#)
        .send()
        .await
        .unwrap();
    let current = fetch_login(&clients.secrets, arn).await.unwrap();
    assert_eq!(current.password.expose(), "next-pw");
    assert_eq!(current.version, rotated.version_id().unwrap());
    let previous = fetch_previous_login(&clients.secrets, arn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(previous.password.expose(), CANARY);
    assert_eq!(previous.version, login.version);

    let missing = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:nope-AbCdEf");
    let err = fetch_login(&clients.secrets, &missing).await.unwrap_err();
    assert_eq!(err.name(), "Aws.NotFound", "{err}");

    let bad = clients
        .secrets
        .create_secret()
        .name("clonesync/not-json")
        .secret_string(format!("password={CANARY}"))
        .send()
        .await
        .unwrap();
    let err = fetch_login(&clients.secrets, bad.arn().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Secret.Invalid");
    assert!(!err.to_string().contains(CANARY), "{err}");
}

#[tokio::test]
async fn registry_waits_and_pipelines_round_trip_idempotently() {
    let moto = Moto::start();
    let clients = moto.clients().await;
    moto.create_registry(&clients).await;
    let registry = Registry {
        client: &clients.dynamodb,
        table: TABLE,
    };
    let wait = Wait {
        kind: WaitKind::Clone,
        resource: "clonesync-orders-dev".into(),
        pipeline_id: "orders_dev".parse().unwrap(),
        task_token: "token-1".into(),
    };
    registry
        .put_wait(&wait, Duration::from_secs(60))
        .await
        .unwrap();
    registry
        .put_wait(&wait, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        registry
            .get_wait(WaitKind::Clone, "clonesync-orders-dev")
            .await
            .unwrap(),
        Some(wait.clone())
    );
    assert_eq!(
        registry
            .get_wait(WaitKind::Share, "clonesync-orders-dev")
            .await
            .unwrap(),
        None
    );
    assert!(
        !format!("{wait:?}").contains("token-1"),
        "the token is not logged"
    );

    let stale = Wait {
        task_token: "token-0".into(),
        ..wait.clone()
    };
    assert!(
        !registry.delete_wait(&stale).await.unwrap(),
        "a stale token never removes a newer wait"
    );
    assert!(registry.delete_wait(&wait).await.unwrap());
    assert_eq!(
        registry
            .get_wait(WaitKind::Clone, "clonesync-orders-dev")
            .await
            .unwrap(),
        None
    );

    let record = PipelineRecord {
        pipeline: PipelineSpec::with_defaults("orders_dev", Scope::AllTables).unwrap(),
        source: plane(
            &clients,
            &moto.settings(),
            "arn:aws:rds:eu-west-1:123456789012:cluster:x",
        )
        .source,
        clone: plane(&clients, &moto.settings(), "x").clone,
        clone_info: Some(CloneInfo {
            clone_id: "clonesync-orders-dev".into(),
            host: "h".into(),
            port: 5432,
        }),
        clone_id: None,
        share: None,
        setup_execution: None,
        phase: clonesync::pipeline::Phase::Streaming,
        registered_at: 1,
        triples: vec![],
        apply_groups: 1,
    };
    use clonesync::pipeline::{Expected, Phase};
    registry
        .put_pipeline(&record, &Expected::Absent)
        .await
        .unwrap();
    // Writes are conditional (DynamoDB is last-writer-wins otherwise):
    // a second "new" record, or a write expecting what is not stored, is
    // refused and changes nothing.
    for stale in [
        Expected::Absent,
        Expected::AsRead {
            setup_execution: None,
            phase: Phase::Paused,
        },
        Expected::AsRead {
            setup_execution: Some("arn:other-setup".into()),
            phase: Phase::Streaming,
        },
        Expected::OwnedBy("arn:other-setup".into()),
    ] {
        let changed = PipelineRecord {
            phase: Phase::Paused,
            ..record.clone()
        };
        let err = registry.put_pipeline(&changed, &stale).await.unwrap_err();
        assert_eq!(err.name(), "Pipeline.Changed", "{stale:?}: {err}");
    }
    registry
        .put_pipeline(&record, &Expected::as_read(&record))
        .await
        .unwrap();
    registry
        .put_pipeline(&record, &Expected::Unowned)
        .await
        .unwrap();
    // Two setups of one id that both read the record as it is: the first
    // takes it, the second is refused.
    let taken = |execution: &str| PipelineRecord {
        setup_execution: Some(execution.into()),
        ..record.clone()
    };
    let read = Expected::as_read(&record);
    registry
        .put_pipeline(&taken("arn:setup-1"), &read)
        .await
        .unwrap();
    let second = registry
        .put_pipeline(&taken("arn:setup-2"), &read)
        .await
        .unwrap_err();
    assert_eq!(second.name(), "Pipeline.Changed");
    // The setup that holds it writes again; the other one cannot.
    registry
        .put_pipeline(
            &taken("arn:setup-1"),
            &Expected::OwnedBy("arn:setup-1".into()),
        )
        .await
        .unwrap();
    let stale = registry
        .put_pipeline(
            &taken("arn:setup-2"),
            &Expected::OwnedBy("arn:setup-2".into()),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.name(), "Pipeline.Changed");
    registry
        .put_pipeline(&record, &Expected::as_read(&taken("arn:setup-1")))
        .await
        .unwrap();
    // The inventory's names are attributes of the item too, for the console.
    let item = clients
        .dynamodb
        .get_item()
        .table_name(TABLE)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("pipeline#orders_dev".into()),
        )
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    let attribute = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(attribute("phase").as_deref(), Some("streaming"));
    assert_eq!(attribute("slot").as_deref(), Some("clonesync_orders_dev"));
    assert_eq!(
        attribute("clone_cluster").as_deref(),
        Some("clonesync-orders-dev")
    );
    assert_eq!(
        attribute("clone_instance").as_deref(),
        Some("clonesync-orders-dev-writer")
    );
    assert_eq!(
        registry.list_pipelines().await.unwrap(),
        vec![record.clone()]
    );
    assert_eq!(
        registry
            .get_pipeline(&"orders_dev".parse().unwrap())
            .await
            .unwrap(),
        Some(record)
    );
    registry
        .delete_pipeline(&"orders_dev".parse().unwrap())
        .await
        .unwrap();
    assert!(registry.list_pipelines().await.unwrap().is_empty());
}

/// CreateClone as the state machine runs it: moto's restored cluster reads
/// `creating` once, then `available` (its state manager), and the step
/// answers `Clone.NotReady` (no writer yet) until then; asked again, it
/// requests the writer. No more than a few attempts.
async fn create_clone_until_ready(
    plane: &AwsControlPlane<'_>,
    clone_id: &str,
) -> clonesync::pipeline::CloneInfo {
    let mut not_ready = 0;
    loop {
        match plane.create_clone(clone_id).await {
            Ok(info) => return info,
            Err(e) if e.name() == "Clone.NotReady" && not_ready < 3 => not_ready += 1,
            Err(e) => panic!("create_clone: {e}"),
        }
    }
}

#[tokio::test]
async fn a_same_account_copy_on_write_clone_is_made_once_and_deleted() {
    let moto = Moto::start();
    let clients = moto.clients().await;
    let settings = moto.settings();
    let arn = source_cluster(&clients).await;
    let plane = plane(&clients, &settings, &arn);
    let first = create_clone_until_ready(&plane, "clonesync-orders-dev").await;
    let again = plane.create_clone("clonesync-orders-dev").await.unwrap();
    assert_eq!(first.clone_id, again.clone_id);
    assert_eq!(first.host, again.host);
    let clusters = clients.rds.describe_db_clusters().send().await.unwrap();
    assert_eq!(clusters.db_clusters().len(), 2, "the source and one clone");
    let clone = clusters
        .db_clusters()
        .iter()
        .find(|c| c.db_cluster_identifier() == Some("clonesync-orders-dev"))
        .unwrap();
    assert!(clone
        .tag_list()
        .iter()
        .any(|t| t.key() == Some(TAG_PIPELINE) && t.value() == Some("orders_dev")));
    let ready = plane.clone_status("clonesync-orders-dev").await.unwrap();
    assert_eq!(ready.host, first.host);

    // This pipeline's preflight passes (its own clone is no obstacle);
    // another pipeline's sees this clone as an earlier clone, and only that.
    // The login's secret exists and does not rotate.
    let secret = clients
        .source_secrets
        .create_secret()
        .name("orders-repl")
        .secret_string(r#"{"username":"repl","password":"p"}"#)
        .send()
        .await
        .unwrap();
    let plane = AwsControlPlane {
        source: clonesync::pipeline::SourceCluster {
            secret_arn: secret.arn().unwrap().to_string(),
            ..plane.source.clone()
        },
        ..plane
    };
    let checks: Vec<String> = plane
        .preflight()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.check)
        .collect();
    assert!(checks.is_empty(), "{checks:?}");
    let other = AwsControlPlane {
        pipeline_id: "orders_other".parse().unwrap(),
        source: plane.source.clone(),
        ..orders_plane(&clients, &settings, &arn, None)
    };
    let checks: Vec<String> = other
        .preflight()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.check)
        .collect();
    assert_eq!(checks, ["earlier_clone"]);

    assert!(plane.delete_clone("clonesync-orders-dev").await.unwrap());
    assert!(!plane.delete_clone("clonesync-orders-dev").await.unwrap());
}

/// One id, one owner, for clones: a clone tagged by one setup of a
/// pipeline id (another deployment in this account) is neither adopted
/// nor deleted by another setup of the same id.
#[tokio::test]
async fn a_clone_of_another_setup_of_the_same_id_is_neither_reused_nor_deleted() {
    let moto = Moto::start();
    let clients = moto.clients().await;
    let settings = moto.settings();
    let arn = source_cluster(&clients).await;
    let first = AwsControlPlane {
        setup_mark: "0123456789abcdef".into(),
        ..plane(&clients, &settings, &arn)
    };
    create_clone_until_ready(&first, "clonesync-orders-dev").await;
    let clusters = clients.rds.describe_db_clusters().send().await.unwrap();
    let clone = clusters
        .db_clusters()
        .iter()
        .find(|c| c.db_cluster_identifier() == Some("clonesync-orders-dev"))
        .unwrap();
    assert!(clone
        .tag_list()
        .iter()
        .any(|t| t.key() == Some(clonesync::pipeline::names::TAG_SETUP)
            && t.value() == Some("0123456789abcdef")));

    let second = AwsControlPlane {
        setup_mark: "fedcba9876543210".into(),
        ..plane(&clients, &settings, &arn)
    };
    let error = second
        .create_clone("clonesync-orders-dev")
        .await
        .unwrap_err();
    assert_eq!(error.name(), "Clone.Conflict", "{error}");
    assert!(error.to_string().contains("another setup"), "{error}");
    assert!(!second.delete_clone("clonesync-orders-dev").await.unwrap());
    assert!(first.clone_status("clonesync-orders-dev").await.is_ok());
    assert!(first.delete_clone("clonesync-orders-dev").await.unwrap());
}

#[tokio::test]
async fn an_untagged_cluster_of_the_clone_name_is_never_adopted_or_deleted() {
    let moto = Moto::start();
    let clients = moto.clients().await;
    let settings = moto.settings();
    let arn = source_cluster(&clients).await;
    clients
        .rds
        .create_db_cluster()
        .db_cluster_identifier("clonesync-orders-dev")
        .engine("aurora-postgresql")
        .master_username("postgres")
        .master_user_password("password-1")
        .tags(Tag::builder().key("team").value("analytics").build())
        .send()
        .await
        .unwrap();
    let plane = plane(&clients, &settings, &arn);
    assert_eq!(
        plane
            .create_clone("clonesync-orders-dev")
            .await
            .unwrap_err()
            .name(),
        "Clone.Conflict"
    );
    assert!(
        !plane.delete_clone("clonesync-orders-dev").await.unwrap(),
        "cleanup finds nothing of ours to delete"
    );
    let still = clients
        .rds
        .describe_db_clusters()
        .db_cluster_identifier("clonesync-orders-dev")
        .send()
        .await
        .unwrap();
    assert_eq!(still.db_clusters().len(), 1);
}

#[tokio::test]
async fn rds_events_wake_the_waiting_clone_once_and_ignore_the_rest() {
    let moto = Moto::start();
    let clients = moto.clients().await;
    let settings = moto.settings();
    moto.create_registry(&clients).await;
    let registry = Registry {
        client: &clients.dynamodb,
        table: TABLE,
    };
    let arn = source_cluster(&clients).await;
    create_clone_until_ready(&plane(&clients, &settings, &arn), "clonesync-orders-dev").await;
    let wait = Wait {
        kind: WaitKind::Clone,
        resource: "clonesync-orders-dev".into(),
        pipeline_id: "orders_dev".parse().unwrap(),
        task_token: "token-clone".into(),
    };
    registry
        .put_wait(&wait, Duration::from_secs(600))
        .await
        .unwrap();

    let unknown = on_rds_event(
        &clonesync_tests::moto::context(&clients, &settings),
        fixture("rds-unknown-cluster.json"),
    )
    .await
    .unwrap();
    assert_eq!(unknown.ignored, ["someone-elses-cluster"]);
    assert!(unknown.woken.is_empty());
    // AWS's published samples themselves: read, and ignored (no step
    // waits for my-db-cluster).
    for (sample, resource) in [
        ("aws-sample-rds-cluster-event.json", "my-db-cluster"),
        ("aws-sample-rds-instance-event.json", "my-db-instance"),
    ] {
        let report = on_rds_event(
            &clonesync_tests::moto::context(&clients, &settings),
            fixture(sample),
        )
        .await
        .unwrap();
        assert_eq!(report.ignored, [resource], "{sample}");
        assert!(report.woken.is_empty(), "{sample}");
    }

    let first = on_rds_event(
        &clonesync_tests::moto::context(&clients, &settings),
        fixture("rds-instance-created.json"),
    )
    .await
    .unwrap();
    assert_eq!(first.woken, ["clonesync-orders-dev"]);
    assert_eq!(
        registry
            .get_wait(WaitKind::Clone, "clonesync-orders-dev")
            .await
            .unwrap(),
        None
    );

    for duplicate in ["rds-instance-created.json", "rds-cluster-created.json"] {
        let again = on_rds_event(
            &clonesync_tests::moto::context(&clients, &settings),
            fixture(duplicate),
        )
        .await
        .unwrap();
        assert!(again.woken.is_empty(), "{duplicate}: {again:?}");
        assert_eq!(again.ignored.len(), 1);
    }

    let foreign = on_rds_event(
        &clonesync_tests::moto::context(&clients, &settings),
        fixture("other-source.json"),
    )
    .await
    .unwrap();
    assert_eq!(foreign.ignored.len(), 1);
    for malformed in ["not-an-event.json", "rds-detail-without-identifier.json"] {
        let err = on_rds_event(
            &clonesync_tests::moto::context(&clients, &settings),
            fixture(malformed),
        )
        .await
        .unwrap_err();
        assert_eq!(err.name(), "Event.Malformed", "{malformed}");
    }
}
