//! The waits and the RAM event handler: RAM and Step Functions answers from
//! aws-smithy-mocks (moto has no RAM invitations), the registry in moto's
//! DynamoDB. Also the Step Functions and Secrets Manager error mapping.

use aws_sdk_ram::operation::accept_resource_share_invitation::AcceptResourceShareInvitationOutput;
use aws_sdk_ram::operation::get_resource_share_associations::GetResourceShareAssociationsOutput;
use aws_sdk_ram::operation::get_resource_share_invitations::{
    GetResourceShareInvitationsError, GetResourceShareInvitationsOutput,
};
use aws_sdk_ram::types::error::ResourceShareInvitationArnNotFoundException;
use aws_sdk_ram::types::{ResourceShareInvitation, ResourceShareInvitationStatus};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_sfn::operation::send_task_heartbeat::SendTaskHeartbeatOutput;
use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
use aws_sdk_sfn::types::error::TaskTimedOut;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use clonesync::aws::registry::Registry;
use clonesync::aws::{secrets, sfn};
use clonesync::handlers::on_ram_event;
use clonesync::pipeline::WaitKind;
use clonesync::workflow::state::validate;
use clonesync::workflow::waits::{await_share, TokenInput, WaitOutcome};
use clonesync_tests::aws_mock::coded;
use clonesync_tests::moto::{Moto, ACCOUNT, TABLE};

const SHARE_ARN: &str =
    "arn:aws:ram:eu-west-1:111122223333:resource-share/7ab63972-b505-4e2a-9c6a-0123456789ab";
const INVITATION_ARN: &str =
    "arn:aws:ram:eu-west-1:111122223333:resource-share-invitation/d28f4d0c-1dbd-4d8a-a5b2-0123456789ab";

fn fixture(name: &str) -> serde_json::Value {
    let path = format!("{}/fixtures/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn state_with_share() -> clonesync::workflow::State {
    let example = format!(
        "{}/../statemachine/examples/all-tables.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    input["source"]["cluster_arn"] =
        serde_json::json!("arn:aws:rds:eu-west-1:111122223333:cluster:orders-prod");
    let mut state = validate(input, "eu-west-1").unwrap();
    state.share = Some(clonesync::pipeline::Share {
        share_arn: SHARE_ARN.into(),
        name: "clonesync-orders_dev".into(),
        created_now: true,
    });
    state
}

fn invitation(status: ResourceShareInvitationStatus) -> ResourceShareInvitation {
    ResourceShareInvitation::builder()
        .resource_share_arn(SHARE_ARN)
        .resource_share_invitation_arn(INVITATION_ARN)
        .receiver_account_id(ACCOUNT)
        .status(status)
        .build()
}

fn invitations(status: ResourceShareInvitationStatus) -> Rule {
    mock!(aws_sdk_ram::Client::get_resource_share_invitations).then_output(move || {
        GetResourceShareInvitationsOutput::builder()
            .resource_share_invitations(invitation(status.clone()))
            .build()
    })
}

fn success_for(token: &'static str) -> Rule {
    mock!(aws_sdk_sfn::Client::send_task_success)
        .match_requests(move |r| {
            r.task_token() == Some(token) && r.output().is_some_and(|o| o.contains("accepted_now"))
        })
        .then_output(|| SendTaskSuccessOutput::builder().build())
}

#[tokio::test]
async fn a_share_wait_stores_its_token_and_the_invitation_event_completes_it_once() {
    let moto = Moto::start();
    let mut clients = moto.clients().await;
    moto.create_registry(&clients).await;
    let settings = moto.settings();
    let state = state_with_share();

    // Nothing to accept yet: the wait stores its token and returns.
    let none = mock!(aws_sdk_ram::Client::get_resource_share_invitations)
        .then_output(|| GetResourceShareInvitationsOutput::builder().build());
    let not_associated = mock!(aws_sdk_ram::Client::get_resource_share_associations)
        .then_output(|| GetResourceShareAssociationsOutput::builder().build());
    clients.ram = mock_client!(aws_sdk_ram, RuleMode::MatchAny, [&none]);
    clients.source_ram = mock_client!(aws_sdk_ram, RuleMode::MatchAny, [&not_associated]);
    let registry = Registry {
        client: &clients.dynamodb,
        table: TABLE,
    };
    let input = TokenInput {
        task_token: "token-share".into(),
        state: state.clone(),
    };
    assert_eq!(
        await_share(&clonesync_tests::moto::context(&clients, &settings), &input)
            .await
            .unwrap(),
        WaitOutcome::Waiting
    );
    assert!(registry
        .get_wait(WaitKind::Share, SHARE_ARN)
        .await
        .unwrap()
        .is_some());

    // The invitation arrives: the event names it, the handler maps it to
    // the share through the API, accepts and completes the task.
    let pending = invitations(ResourceShareInvitationStatus::Pending);
    let accept = mock!(aws_sdk_ram::Client::accept_resource_share_invitation)
        .then_output(|| AcceptResourceShareInvitationOutput::builder().build());
    let success = success_for("token-share");
    clients.ram = mock_client!(aws_sdk_ram, RuleMode::MatchAny, [&pending, &accept]);
    clients.sfn = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&success]);
    let registry = Registry {
        client: &clients.dynamodb,
        table: TABLE,
    };
    let report = on_ram_event(
        &clonesync_tests::moto::context(&clients, &settings),
        fixture("ram-invitation.json"),
    )
    .await
    .unwrap();
    assert_eq!(report.woken, [SHARE_ARN]);
    assert_eq!((accept.num_calls(), success.num_calls()), (1, 1));
    assert!(registry
        .get_wait(WaitKind::Share, SHARE_ARN)
        .await
        .unwrap()
        .is_none());

    // The same event again: nobody waits any more, nothing is sent.
    let report = on_ram_event(
        &clonesync_tests::moto::context(&clients, &settings),
        fixture("ram-invitation.json"),
    )
    .await
    .unwrap();
    assert!(report.woken.is_empty());
    assert_eq!(report.ignored, [SHARE_ARN]);
    assert_eq!(success.num_calls(), 1);
}

#[tokio::test]
async fn a_share_ready_at_wait_time_completes_at_once() {
    let moto = Moto::start();
    let mut clients = moto.clients().await;
    moto.create_registry(&clients).await;
    let settings = moto.settings();
    let pending = invitations(ResourceShareInvitationStatus::Pending);
    let accept = mock!(aws_sdk_ram::Client::accept_resource_share_invitation)
        .then_output(|| AcceptResourceShareInvitationOutput::builder().build());
    let success = success_for("token-early");
    clients.ram = mock_client!(aws_sdk_ram, RuleMode::MatchAny, [&pending, &accept]);
    clients.sfn = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&success]);
    let registry = Registry {
        client: &clients.dynamodb,
        table: TABLE,
    };
    let input = TokenInput {
        task_token: "token-early".into(),
        state: state_with_share(),
    };
    assert_eq!(
        await_share(&clonesync_tests::moto::context(&clients, &settings), &input)
            .await
            .unwrap(),
        WaitOutcome::CompletedNow
    );
    assert_eq!(success.num_calls(), 1);
    assert!(registry
        .get_wait(WaitKind::Share, SHARE_ARN)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn ram_events_for_unknown_invitations_or_other_sources_are_ignored_and_garbage_is_named() {
    let moto = Moto::start();
    let mut clients = moto.clients().await;
    moto.create_registry(&clients).await;
    let settings = moto.settings();
    let unknown = mock!(aws_sdk_ram::Client::get_resource_share_invitations).then_error(|| {
        GetResourceShareInvitationsError::ResourceShareInvitationArnNotFoundException(
            ResourceShareInvitationArnNotFoundException::builder()
                .message("no")
                .build()
                .unwrap(),
        )
    });
    clients.ram = mock_client!(aws_sdk_ram, RuleMode::MatchAny, [&unknown]);
    let report = on_ram_event(
        &clonesync_tests::moto::context(&clients, &settings),
        fixture("ram-invitation.json"),
    )
    .await
    .unwrap();
    assert_eq!(report.ignored, [INVITATION_ARN]);
    let report = on_ram_event(
        &clonesync_tests::moto::context(&clients, &settings),
        fixture("other-source.json"),
    )
    .await
    .unwrap();
    assert_eq!(report.ignored.len(), 1);
    let err = on_ram_event(
        &clonesync_tests::moto::context(&clients, &settings),
        fixture("not-an-event.json"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Event.Malformed");
    let mut empty = fixture("ram-invitation.json");
    empty["resources"] = serde_json::json!([]);
    let err = on_ram_event(&clonesync_tests::moto::context(&clients, &settings), empty)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Event.Malformed");
}

#[tokio::test]
async fn a_token_no_longer_waiting_is_not_an_error_and_throttling_is_transient() {
    let timed_out = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_error(|| SendTaskSuccessError::TaskTimedOut(TaskTimedOut::builder().build()));
    let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&timed_out]);
    assert!(!sfn::send_success(&client, "old", &serde_json::json!({}))
        .await
        .unwrap());

    let throttled = mock!(aws_sdk_sfn::Client::send_task_success)
        .then_error(|| SendTaskSuccessError::generic(coded("ThrottlingException")));
    let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&throttled]);
    let err = sfn::send_success(&client, "t", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Transient.Aws");

    let beat = mock!(aws_sdk_sfn::Client::send_task_heartbeat)
        .then_output(|| SendTaskHeartbeatOutput::builder().build());
    let client = mock_client!(aws_sdk_sfn, RuleMode::MatchAny, [&beat]);
    assert!(sfn::send_heartbeat(&client, "t").await.unwrap());
}

#[tokio::test]
async fn secret_errors_are_named() {
    for (code, name) in [
        ("AccessDeniedException", "Aws.AccessDenied"),
        ("ThrottlingException", "Transient.Aws"),
    ] {
        let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .then_error(move || GetSecretValueError::generic(coded(code)));
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&rule]);
        let err = secrets::fetch_login(&client, "arn:aws:secretsmanager:eu-west-1:1:secret:x")
            .await
            .unwrap_err();
        assert_eq!(err.name(), name, "{code}");
    }
    let rule = mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_error(|| {
        GetSecretValueError::DecryptionFailure(
            aws_sdk_secretsmanager::types::error::DecryptionFailure::builder().build(),
        )
    });
    let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&rule]);
    let err = secrets::fetch_login(&client, "arn:aws:secretsmanager:eu-west-1:1:secret:x")
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Aws.AccessDenied");
}
