//! The RAM adapter against modeled RAM answers.

use aws_sdk_ram::operation::accept_resource_share_invitation::{
    AcceptResourceShareInvitationError, AcceptResourceShareInvitationOutput,
};
use aws_sdk_ram::operation::create_resource_share::{
    CreateResourceShareError, CreateResourceShareOutput,
};
use aws_sdk_ram::operation::get_resource_share_associations::GetResourceShareAssociationsOutput;
use aws_sdk_ram::operation::get_resource_share_invitations::GetResourceShareInvitationsOutput;
use aws_sdk_ram::operation::get_resource_shares::{
    GetResourceSharesError, GetResourceSharesOutput,
};
use aws_sdk_ram::types::error::{
    ResourceShareInvitationAlreadyAcceptedException, ResourceShareInvitationExpiredException,
};
use aws_sdk_ram::types::{
    ResourceShare, ResourceShareAssociation, ResourceShareAssociationStatus,
    ResourceShareAssociationType, ResourceShareInvitation, ResourceShareInvitationStatus,
    ResourceShareStatus, Tag,
};
use aws_sdk_ram::Client;
use aws_smithy_mocks::{mock, Rule};
use clonesync::aws::ram::{accept_share, share_cluster};
use clonesync::pipeline::names::TAG_PIPELINE;
use clonesync::pipeline::Accepted;
use clonesync_tests::aws_mock::{coded, MockRules, CLUSTER_ARN, TARGET_ACCOUNT};

const SHARE_ARN: &str =
    "arn:aws:ram:eu-west-1:111122223333:resource-share/7ab63972-b505-4e2a-9c6a-0123456789ab";
const INVITATION_ARN: &str =
    "arn:aws:ram:eu-west-1:111122223333:resource-share-invitation/d28f4d0c-1dbd-4d8a-a5b2-0123456789ab";

fn share(tag_pipeline: Option<&str>) -> ResourceShare {
    let mut b = ResourceShare::builder()
        .resource_share_arn(SHARE_ARN)
        .name("clonesync-orders_dev")
        .status(ResourceShareStatus::Active);
    if let Some(p) = tag_pipeline {
        b = b.tags(Tag::builder().key(TAG_PIPELINE).value(p).build());
    }
    b.build()
}

fn association(
    kind: ResourceShareAssociationType,
    entity: &str,
    status: ResourceShareAssociationStatus,
) -> ResourceShareAssociation {
    ResourceShareAssociation::builder()
        .resource_share_arn(SHARE_ARN)
        .association_type(kind)
        .associated_entity(entity)
        .status(status)
        .build()
}

/// The source account's answer about the target account's association.
fn target_association(status: ResourceShareAssociationStatus) -> Rule {
    mock!(Client::get_resource_share_associations).then_output(move || {
        GetResourceShareAssociationsOutput::builder()
            .resource_share_associations(association(
                ResourceShareAssociationType::Principal,
                TARGET_ACCOUNT,
                status.clone(),
            ))
            .build()
    })
}

fn invitation(status: ResourceShareInvitationStatus) -> ResourceShareInvitation {
    ResourceShareInvitation::builder()
        .resource_share_arn(SHARE_ARN)
        .resource_share_invitation_arn(INVITATION_ARN)
        .receiver_account_id(TARGET_ACCOUNT)
        .status(status)
        .build()
}

#[tokio::test]
async fn a_new_share_names_the_cluster_the_target_and_the_pipeline() {
    let none = mock!(Client::get_resource_shares)
        .then_output(|| GetResourceSharesOutput::builder().build());
    let create = mock!(Client::create_resource_share)
        .match_requests(|r| {
            r.resource_arns() == [CLUSTER_ARN]
                && r.principals() == [TARGET_ACCOUNT]
                && r.allow_external_principals() == Some(true)
                && r.client_token()
                    .is_some_and(|t| t.starts_with("clonesync-orders_dev-"))
                && r.tags()
                    .iter()
                    .any(|t| t.key() == Some(TAG_PIPELINE) && t.value() == Some("orders_dev"))
        })
        .then_output(|| {
            CreateResourceShareOutput::builder()
                .resource_share(share(Some("orders_dev")))
                .build()
        });
    let clients = MockRules {
        source_ram: vec![&none, &create],
        ..Default::default()
    }
    .clients();
    let made = share_cluster(
        &clients.source_ram,
        "orders_dev",
        "mark-1",
        CLUSTER_ARN,
        TARGET_ACCOUNT,
    )
    .await
    .unwrap();
    assert_eq!(made.share_arn, SHARE_ARN);
    assert!(made.created_now);
    assert_eq!(create.num_calls(), 1);
}

#[tokio::test]
async fn our_existing_share_is_reused_and_nothing_is_created() {
    let found = mock!(Client::get_resource_shares).then_output(|| {
        GetResourceSharesOutput::builder()
            .resource_shares(share(Some("orders_dev")))
            .build()
    });
    let associations = mock!(Client::get_resource_share_associations).then_compute_output(|r| {
        let assoc = match r.association_type() {
            Some(ResourceShareAssociationType::Resource) => association(
                ResourceShareAssociationType::Resource,
                CLUSTER_ARN,
                ResourceShareAssociationStatus::Associated,
            ),
            _ => association(
                ResourceShareAssociationType::Principal,
                TARGET_ACCOUNT,
                ResourceShareAssociationStatus::Associating,
            ),
        };
        GetResourceShareAssociationsOutput::builder()
            .resource_share_associations(assoc)
            .build()
    });
    let create = mock!(Client::create_resource_share)
        .then_output(|| CreateResourceShareOutput::builder().build());
    let associate = mock!(Client::associate_resource_share).then_output(|| {
        aws_sdk_ram::operation::associate_resource_share::AssociateResourceShareOutput::builder()
            .build()
    });
    let clients = MockRules {
        source_ram: vec![&found, &associations, &create, &associate],
        ..Default::default()
    }
    .clients();
    for _ in 0..2 {
        let share = share_cluster(
            &clients.source_ram,
            "orders_dev",
            "mark-1",
            CLUSTER_ARN,
            TARGET_ACCOUNT,
        )
        .await
        .unwrap();
        assert_eq!(share.share_arn, SHARE_ARN);
        assert!(!share.created_now);
    }
    assert_eq!(create.num_calls(), 0);
    assert_eq!(associate.num_calls(), 0);
}

#[tokio::test]
async fn a_reused_share_missing_the_principal_is_completed() {
    let found = mock!(Client::get_resource_shares).then_output(|| {
        GetResourceSharesOutput::builder()
            .resource_shares(share(Some("orders_dev")))
            .build()
    });
    let associations = mock!(Client::get_resource_share_associations).then_compute_output(|r| {
        match r.association_type() {
            Some(ResourceShareAssociationType::Resource) => {
                GetResourceShareAssociationsOutput::builder()
                    .resource_share_associations(association(
                        ResourceShareAssociationType::Resource,
                        CLUSTER_ARN,
                        ResourceShareAssociationStatus::Associated,
                    ))
                    .build()
            }
            _ => GetResourceShareAssociationsOutput::builder().build(),
        }
    });
    let associate = mock!(Client::associate_resource_share)
        .match_requests(|r| r.principals() == [TARGET_ACCOUNT] && r.resource_arns().is_empty())
        .then_output(|| {
            aws_sdk_ram::operation::associate_resource_share::AssociateResourceShareOutput::builder(
            )
            .build()
        });
    let clients = MockRules {
        source_ram: vec![&found, &associations, &associate],
        ..Default::default()
    }
    .clients();
    share_cluster(
        &clients.source_ram,
        "orders_dev",
        "mark-1",
        CLUSTER_ARN,
        TARGET_ACCOUNT,
    )
    .await
    .unwrap();
    assert_eq!(associate.num_calls(), 1);
}

#[tokio::test]
async fn a_share_of_that_name_that_is_not_ours_is_a_conflict() {
    let found = mock!(Client::get_resource_shares).then_output(|| {
        GetResourceSharesOutput::builder()
            .resource_shares(share(None))
            .build()
    });
    let create = mock!(Client::create_resource_share)
        .then_output(|| CreateResourceShareOutput::builder().build());
    let clients = MockRules {
        source_ram: vec![&found, &create],
        ..Default::default()
    }
    .clients();
    let err = share_cluster(
        &clients.source_ram,
        "orders_dev",
        "mark-1",
        CLUSTER_ARN,
        TARGET_ACCOUNT,
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Share.Failed");
    assert_eq!(create.num_calls(), 0);
}

#[tokio::test]
async fn throttling_and_denial_keep_their_names() {
    let throttled = mock!(Client::get_resource_shares)
        .then_error(|| GetResourceSharesError::generic(coded("ThrottlingException")));
    let clients = MockRules {
        source_ram: vec![&throttled],
        ..Default::default()
    }
    .clients();
    let err = share_cluster(
        &clients.source_ram,
        "orders_dev",
        "mark-1",
        CLUSTER_ARN,
        TARGET_ACCOUNT,
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Transient.Aws", "{err}");

    let none = mock!(Client::get_resource_shares)
        .then_output(|| GetResourceSharesOutput::builder().build());
    let denied = mock!(Client::create_resource_share)
        .then_error(|| CreateResourceShareError::generic(coded("AccessDeniedException")));
    let clients = MockRules {
        source_ram: vec![&none, &denied],
        ..Default::default()
    }
    .clients();
    let err = share_cluster(
        &clients.source_ram,
        "orders_dev",
        "mark-1",
        CLUSTER_ARN,
        TARGET_ACCOUNT,
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Aws.AccessDenied", "{err}");
}

fn invitations(status: Option<ResourceShareInvitationStatus>) -> aws_smithy_mocks::Rule {
    mock!(Client::get_resource_share_invitations).then_output(move || {
        let mut b = GetResourceShareInvitationsOutput::builder();
        if let Some(s) = status.clone() {
            b = b.resource_share_invitations(invitation(s));
        }
        b.build()
    })
}

#[tokio::test]
async fn a_pending_invitation_is_accepted_and_a_second_call_finds_it_accepted() {
    let pending = invitations(Some(ResourceShareInvitationStatus::Pending));
    let accept = mock!(Client::accept_resource_share_invitation)
        .match_requests(|r| {
            r.resource_share_invitation_arn() == Some(INVITATION_ARN) && r.client_token().is_some()
        })
        .then_output(|| AcceptResourceShareInvitationOutput::builder().build());
    let clients = MockRules {
        ram: vec![&pending, &accept],
        ..Default::default()
    }
    .clients();
    let got = accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
        .await
        .unwrap();
    assert_eq!(
        got,
        Accepted::AcceptedNow {
            invitation_arn: INVITATION_ARN.into()
        }
    );

    let accepted = invitations(Some(ResourceShareInvitationStatus::Accepted));
    let accept_again = mock!(Client::accept_resource_share_invitation)
        .then_output(|| AcceptResourceShareInvitationOutput::builder().build());
    let clients = MockRules {
        ram: vec![&accepted, &accept_again],
        ..Default::default()
    }
    .clients();
    let got = accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
        .await
        .unwrap();
    assert_eq!(
        got,
        Accepted::AlreadyAccepted {
            invitation_arn: INVITATION_ARN.into()
        }
    );
    assert_eq!(accept_again.num_calls(), 0);
}

#[tokio::test]
async fn accept_racing_another_accept_is_success() {
    let pending = invitations(Some(ResourceShareInvitationStatus::Pending));
    let raced = mock!(Client::accept_resource_share_invitation).then_error(|| {
        AcceptResourceShareInvitationError::ResourceShareInvitationAlreadyAcceptedException(
            ResourceShareInvitationAlreadyAcceptedException::builder()
                .message("already")
                .build()
                .unwrap(),
        )
    });
    let clients = MockRules {
        ram: vec![&pending, &raced],
        ..Default::default()
    }
    .clients();
    let got = accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
        .await
        .unwrap();
    assert!(matches!(got, Accepted::AlreadyAccepted { .. }));
}

#[tokio::test]
async fn an_expired_invitation_fails_for_good() {
    let pending = invitations(Some(ResourceShareInvitationStatus::Pending));
    let expired = mock!(Client::accept_resource_share_invitation).then_error(|| {
        AcceptResourceShareInvitationError::ResourceShareInvitationExpiredException(
            ResourceShareInvitationExpiredException::builder()
                .message("expired")
                .build()
                .unwrap(),
        )
    });
    let clients = MockRules {
        ram: vec![&pending, &expired],
        ..Default::default()
    }
    .clients();
    let err = accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Share.Failed");
    let listed_expired = invitations(Some(ResourceShareInvitationStatus::Expired));
    let clients = MockRules {
        ram: vec![&listed_expired],
        ..Default::default()
    }
    .clients();
    let err = accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Share.Failed");
}

#[tokio::test]
async fn without_invitation_the_association_decides_organization_or_not_yet() {
    let nothing = invitations(None);
    let associated = mock!(Client::get_resource_share_associations)
        .match_requests(|r| r.principal() == Some(TARGET_ACCOUNT))
        .then_output(|| {
            GetResourceShareAssociationsOutput::builder()
                .resource_share_associations(association(
                    ResourceShareAssociationType::Principal,
                    TARGET_ACCOUNT,
                    ResourceShareAssociationStatus::Associated,
                ))
                .build()
        });
    let clients = MockRules {
        ram: vec![&nothing],
        source_ram: vec![&associated],
        ..Default::default()
    }
    .clients();
    let got = accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
        .await
        .unwrap();
    assert_eq!(got, Accepted::NoInvitationNeeded);

    let nothing = invitations(None);
    let associating = target_association(ResourceShareAssociationStatus::Associating);
    let clients = MockRules {
        ram: vec![&nothing],
        source_ram: vec![&associating],
        ..Default::default()
    }
    .clients();
    let err = accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Share.NotReady");
    assert!(err.is_transient());
}

#[tokio::test]
async fn deleting_a_share_twice_is_once() {
    use aws_sdk_ram::operation::delete_resource_share::{
        DeleteResourceShareError, DeleteResourceShareOutput,
    };
    use aws_sdk_ram::types::error::UnknownResourceException;
    let delete = mock!(Client::delete_resource_share)
        .sequence()
        .output(|| DeleteResourceShareOutput::builder().build())
        .error(|| {
            DeleteResourceShareError::UnknownResourceException(
                UnknownResourceException::builder()
                    .message("gone")
                    .build()
                    .unwrap(),
            )
        })
        .build();
    let clients = MockRules {
        source_ram: vec![&delete],
        ..Default::default()
    }
    .clients();
    assert!(
        clonesync::aws::ram::delete_share(&clients.source_ram, SHARE_ARN)
            .await
            .unwrap()
    );
    assert!(
        !clonesync::aws::ram::delete_share(&clients.source_ram, SHARE_ARN)
            .await
            .unwrap()
    );
}

/// The local IAM check authorizes, for each share operation the local
/// cloud plays, the calls listed in `clonesync_local::iam::calls`: they
/// must be the operations the RAM adapter really sends (a new share; an
/// invitation accepted, or none needed in an organization; a deletion).
#[tokio::test]
async fn the_local_iam_model_lists_every_call_the_ram_adapter_sends() {
    use clonesync_local::iam::calls;
    use clonesync_tests::aws_mock::{iam_substitutions, listed as names, Operations};
    let subs = iam_substitutions();

    let none = mock!(Client::get_resource_shares)
        .then_output(|| GetResourceSharesOutput::builder().build());
    let create = mock!(Client::create_resource_share).then_output(|| {
        CreateResourceShareOutput::builder()
            .resource_share(share(Some("orders_dev")))
            .build()
    });
    let sent = Operations::default();
    let clients = MockRules {
        source_ram: vec![&none, &create],
        ..Default::default()
    }
    .clients_recording(&sent);
    share_cluster(
        &clients.source_ram,
        "orders_dev",
        "mark-1",
        CLUSTER_ARN,
        TARGET_ACCOUNT,
    )
    .await
    .unwrap();
    assert_eq!(
        sent.sent(),
        names(calls::share_cluster(&subs, "orders_dev", CLUSTER_ARN, true)),
        "a new share"
    );

    // Accepting: an invitation, or (in an organization) the association.
    let sent = Operations::default();
    let pending = invitations(Some(ResourceShareInvitationStatus::Pending));
    let accept = mock!(Client::accept_resource_share_invitation)
        .then_output(|| AcceptResourceShareInvitationOutput::builder().build());
    let clients = MockRules {
        ram: vec![&pending, &accept],
        ..Default::default()
    }
    .clients_recording(&sent);
    accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
        .await
        .unwrap();
    let nothing = invitations(None);
    let associated = target_association(ResourceShareAssociationStatus::Associated);
    let clients = MockRules {
        ram: vec![&nothing],
        source_ram: vec![&associated],
        ..Default::default()
    }
    .clients_recording(&sent);
    assert_eq!(
        accept_share(&clients.ram, &clients.source_ram, SHARE_ARN, TARGET_ACCOUNT)
            .await
            .unwrap(),
        Accepted::NoInvitationNeeded
    );
    assert_eq!(
        sent.sent(),
        names(calls::accept_share(INVITATION_ARN)),
        "accepting"
    );

    let delete = mock!(Client::delete_resource_share).then_output(|| {
        aws_sdk_ram::operation::delete_resource_share::DeleteResourceShareOutput::builder().build()
    });
    let sent = Operations::default();
    let clients = MockRules {
        source_ram: vec![&delete],
        ..Default::default()
    }
    .clients_recording(&sent);
    clonesync::aws::ram::delete_share(&clients.source_ram, SHARE_ARN)
        .await
        .unwrap();
    assert_eq!(
        sent.sent(),
        names(calls::delete_share(SHARE_ARN, "orders_dev")),
        "deleting"
    );
}
