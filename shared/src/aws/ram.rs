//! The RAM share of the source cluster with the target account.
//!
//! [`share_cluster`] runs in the source account. It is idempotent by name:
//! an active share of that name tagged with this pipeline is reused (and
//! completed if the cluster or the principal is missing from it); one that
//! is not ours is a `Share.Failed` conflict; a new one is created with a
//! `clientToken` derived from the pipeline, so a retried create returns the
//! same share instead of a second one.
//!
//! [`delete_share`] undoes a share the failed run created; a share it
//! reused is left, since a pipeline that already streams may rest on it.
//!
//! [`accept_share`] runs in the target account: a pending invitation for
//! the share is accepted, an accepted one is success. Inside an AWS
//! Organization with sharing enabled there is no invitation at all; then
//! the principal's association, read in the source account, tells whether
//! the share is usable. Neither trusts an event: both ask the API.

use crate::aws::fault::classify;
use crate::error::{Error, Result};
use crate::pipeline::names::{self, TAG_PIPELINE};
use crate::pipeline::{Accepted, Share};
use aws_sdk_ram::types::{
    ResourceOwner, ResourceShareAssociationStatus, ResourceShareAssociationType,
    ResourceShareInvitationStatus, ResourceShareStatus, Tag,
};

const SERVICE: &str = "ram";

pub async fn share_cluster(
    ram: &aws_sdk_ram::Client,
    pipeline_id: &str,
    setup_mark: &str,
    cluster_arn: &str,
    target_account: &str,
) -> Result<Share> {
    let name = names::share_name(pipeline_id);
    let found = ram
        .get_resource_shares()
        .resource_owner(ResourceOwner::SelfValue)
        .name(&name)
        .send()
        .await
        .map_err(|e| classify(SERVICE, "GetResourceShares", e))?;
    let live = found.resource_shares().iter().find(|share| {
        !matches!(
            share.status(),
            Some(
                ResourceShareStatus::Deleted
                    | ResourceShareStatus::Deleting
                    | ResourceShareStatus::Failed
            )
        )
    });
    if let Some(existing) = live {
        let arn = existing
            .resource_share_arn()
            .unwrap_or_default()
            .to_string();
        let ours = existing
            .tags()
            .iter()
            .any(|t| t.key() == Some(TAG_PIPELINE) && t.value() == Some(pipeline_id));
        if !ours {
            return Err(Error::ShareFailed {
                share: arn,
                reason: format!("a resource share named {name:?} exists and is not tagged {TAG_PIPELINE}={pipeline_id}"),
            });
        }
        complete_associations(ram, &arn, cluster_arn, target_account).await?;
        tracing::info!(share = %arn, "reusing the pipeline's resource share");
        return Ok(Share {
            share_arn: arn,
            name,
            created_now: false,
        });
    }
    let created = ram
        .create_resource_share()
        .name(&name)
        .resource_arns(cluster_arn)
        .principals(target_account)
        .allow_external_principals(true)
        .tags(Tag::builder().key(TAG_PIPELINE).value(pipeline_id).build())
        .client_token(client_token(
            pipeline_id,
            setup_mark,
            cluster_arn,
            target_account,
        ))
        .send()
        .await
        .map_err(|e| classify(SERVICE, "CreateResourceShare", e))?;
    let arn = created
        .resource_share()
        .and_then(|s| s.resource_share_arn())
        .ok_or_else(|| Error::ShareFailed {
            share: name.clone(),
            reason: "CreateResourceShare returned no share ARN".into(),
        })?
        .to_string();
    tracing::info!(share = %arn, cluster = cluster_arn, principal = target_account, "resource share created");
    Ok(Share {
        share_arn: arn,
        name,
        created_now: true,
    })
}

/// The same request of the same setup gets the same token: RAM then
/// answers a retried create with the share it already made. A later setup
/// (another `setup_mark`) gets another, so RAM never answers it with a
/// share an earlier setup made and deleted within the token's window. The
/// hash is FNV-1a (64 bits), written out so the token does not change with
/// the Rust release (`DefaultHasher` may).
fn client_token(
    pipeline_id: &str,
    setup_mark: &str,
    cluster_arn: &str,
    target_account: &str,
) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [pipeline_id, setup_mark, cluster_arn, target_account] {
        // A separator no part contains, so ("ab", "c") and ("a", "bc")
        // differ.
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("clonesync-{pipeline_id}-{hash:016x}")
        .chars()
        .take(64)
        .collect()
}

/// Add the cluster and the principal to a reused share when either is
/// missing (a share someone trimmed by hand).
async fn complete_associations(
    ram: &aws_sdk_ram::Client,
    share_arn: &str,
    cluster_arn: &str,
    target_account: &str,
) -> Result<()> {
    let resources = associated(ram, share_arn, ResourceShareAssociationType::Resource).await?;
    let principals = associated(ram, share_arn, ResourceShareAssociationType::Principal).await?;
    let missing_resource = !resources.iter().any(|r| r == cluster_arn);
    let missing_principal = !principals.iter().any(|p| p == target_account);
    if missing_resource || missing_principal {
        let mut request = ram.associate_resource_share().resource_share_arn(share_arn);
        if missing_resource {
            request = request.resource_arns(cluster_arn);
        }
        if missing_principal {
            request = request.principals(target_account);
        }
        request
            .send()
            .await
            .map_err(|e| classify(SERVICE, "AssociateResourceShare", e))?;
        tracing::info!(
            share = share_arn,
            missing_resource,
            missing_principal,
            "completed the share's associations"
        );
    }
    Ok(())
}

/// The entities of one kind associated (or being associated) with a share.
async fn associated(
    ram: &aws_sdk_ram::Client,
    share_arn: &str,
    kind: ResourceShareAssociationType,
) -> Result<Vec<String>> {
    let out = ram
        .get_resource_share_associations()
        .association_type(kind)
        .resource_share_arns(share_arn)
        .send()
        .await
        .map_err(|e| classify(SERVICE, "GetResourceShareAssociations", e))?;
    Ok(out
        .resource_share_associations()
        .iter()
        .filter(|a| {
            matches!(
                a.status(),
                Some(
                    ResourceShareAssociationStatus::Associated
                        | ResourceShareAssociationStatus::Associating
                )
            )
        })
        .filter_map(|a| a.associated_entity().map(str::to_string))
        .collect())
}

/// Accept the share in the target account (`target_ram`); `source_ram`
/// answers whether an invitation-less (organization) share is associated.
pub async fn accept_share(
    target_ram: &aws_sdk_ram::Client,
    source_ram: &aws_sdk_ram::Client,
    share_arn: &str,
    target_account: &str,
) -> Result<Accepted> {
    let invitations = target_ram
        .get_resource_share_invitations()
        .resource_share_arns(share_arn)
        .send()
        .await
        .map_err(|e| classify(SERVICE, "GetResourceShareInvitations", e))?;
    let mine: Vec<_> = invitations
        .resource_share_invitations()
        .iter()
        .filter(|i| i.receiver_account_id().is_none_or(|r| r == target_account))
        .collect();
    if let Some(accepted) = mine
        .iter()
        .find(|i| i.status() == Some(&ResourceShareInvitationStatus::Accepted))
    {
        return Ok(Accepted::AlreadyAccepted {
            invitation_arn: accepted
                .resource_share_invitation_arn()
                .unwrap_or_default()
                .to_string(),
        });
    }
    if let Some(pending) = mine
        .iter()
        .find(|i| i.status() == Some(&ResourceShareInvitationStatus::Pending))
    {
        let invitation_arn = pending
            .resource_share_invitation_arn()
            .unwrap_or_default()
            .to_string();
        return accept_invitation(target_ram, share_arn, &invitation_arn).await;
    }
    if let Some(dead) = mine.first() {
        return Err(Error::ShareFailed {
            share: share_arn.to_string(),
            reason: format!(
                "the invitation is {}; run the pipeline again to share anew",
                dead.status().map(|s| s.as_str()).unwrap_or("unknown")
            ),
        });
    }
    // No invitation: within an organization the principal is associated
    // directly. Otherwise the invitation has not arrived yet.
    let associations = source_ram
        .get_resource_share_associations()
        .association_type(ResourceShareAssociationType::Principal)
        .resource_share_arns(share_arn)
        .principal(target_account)
        .send()
        .await
        .map_err(|e| classify(SERVICE, "GetResourceShareAssociations", e))?;
    let status = associations
        .resource_share_associations()
        .iter()
        .find_map(|a| a.status().cloned());
    match status {
        Some(ResourceShareAssociationStatus::Associated) => Ok(Accepted::NoInvitationNeeded),
        Some(ResourceShareAssociationStatus::Failed) => Err(Error::ShareFailed {
            share: share_arn.to_string(),
            reason: "the association with the target account failed".into(),
        }),
        other => Err(Error::ShareNotReady {
            share_arn: share_arn.to_string(),
            status: format!(
                "no invitation yet; principal association {}",
                other.as_ref().map(|s| s.as_str()).unwrap_or("absent")
            ),
        }),
    }
}

async fn accept_invitation(
    ram: &aws_sdk_ram::Client,
    share_arn: &str,
    invitation_arn: &str,
) -> Result<Accepted> {
    use aws_sdk_ram::operation::accept_resource_share_invitation::AcceptResourceShareInvitationError as E;
    match ram
        .accept_resource_share_invitation()
        .resource_share_invitation_arn(invitation_arn)
        .client_token(format!("clonesync-accept-{}", invitation_arn.rsplit('/').next().unwrap_or("x")))
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(share = share_arn, invitation = invitation_arn, "invitation accepted");
            Ok(Accepted::AcceptedNow {
                invitation_arn: invitation_arn.to_string(),
            })
        }
        Err(e) => match e.as_service_error() {
            Some(E::ResourceShareInvitationAlreadyAcceptedException(_)) => Ok(Accepted::AlreadyAccepted {
                invitation_arn: invitation_arn.to_string(),
            }),
            Some(E::ResourceShareInvitationAlreadyRejectedException(_)) | Some(E::ResourceShareInvitationExpiredException(_)) => {
                Err(Error::ShareFailed {
                    share: share_arn.to_string(),
                    reason: "the invitation was rejected or has expired; run the pipeline again to share anew".into(),
                })
            }
            Some(E::ResourceShareInvitationArnNotFoundException(_)) => Err(Error::ShareNotReady {
                share_arn: share_arn.to_string(),
                status: "invitation not found yet".into(),
            }),
            _ => Err(classify(SERVICE, "AcceptResourceShareInvitation", e)),
        },
    }
}

/// The resource share an invitation belongs to, asked of the API (event
/// handlers use it to map an invitation ARN from an event to a waiting
/// pipeline). `None` when the invitation is unknown to this account.
pub async fn share_of_invitation(
    ram: &aws_sdk_ram::Client,
    invitation_arn: &str,
) -> Result<Option<String>> {
    use aws_sdk_ram::operation::get_resource_share_invitations::GetResourceShareInvitationsError as E;
    match ram
        .get_resource_share_invitations()
        .resource_share_invitation_arns(invitation_arn)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .resource_share_invitations()
            .first()
            .and_then(|i| i.resource_share_arn())
            .map(str::to_string)),
        Err(e) => match e.as_service_error() {
            Some(E::ResourceShareInvitationArnNotFoundException(_))
            | Some(E::MalformedArnException(_)) => Ok(None),
            _ => Err(classify(SERVICE, "GetResourceShareInvitations", e)),
        },
    }
}

/// Delete a share this run created (cleanup after a failure). `false` when
/// it is gone already.
pub async fn delete_share(ram: &aws_sdk_ram::Client, share_arn: &str) -> Result<bool> {
    use aws_sdk_ram::operation::delete_resource_share::DeleteResourceShareError as E;
    match ram
        .delete_resource_share()
        .resource_share_arn(share_arn)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(share = share_arn, "resource share deleted");
            Ok(true)
        }
        Err(e) => match e.as_service_error() {
            Some(E::UnknownResourceException(_)) => Ok(false),
            // Already being deleted.
            Some(E::InvalidStateTransitionException(_)) => Ok(true),
            _ => Err(classify(SERVICE, "DeleteResourceShare", e)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::client_token;

    #[test]
    fn the_client_token_is_stable_and_differs_per_setup() {
        let arn = "arn:aws:rds:eu-west-1:111122223333:cluster:orders";
        let first = client_token("orders_dev", "mark-1", arn, "444455556666");
        // Computed once and written down: the same on every Rust release.
        assert_eq!(
            first,
            client_token("orders_dev", "mark-1", arn, "444455556666")
        );
        assert_eq!(first, STABLE);
        assert_ne!(
            first,
            client_token("orders_dev", "mark-2", arn, "444455556666")
        );
        assert_ne!(
            client_token("a", "bc", arn, "1"),
            client_token("ab", "c", arn, "1")
        );
        assert!(first.len() <= 64 && first.starts_with("clonesync-orders_dev-"));
    }

    // FNV-1a by hand (Python) over the four parts, each followed by 0xff.
    const STABLE: &str = "clonesync-orders_dev-a21541e582d9831d";
}
