//! EventBridge handlers that wake the waiting steps.
//!
//! Events are best effort: they repeat, come out of order or not at all.
//! So a handler never acts on the event body alone. It takes the resource
//! identifiers from it, looks for a step waiting on one of them, and asks
//! the API whether the resource is really ready before completing the task.
//! A resource nobody waits for is logged and ignored; a second copy of an
//! event finds the wait gone and is ignored too. An event that is not of
//! the expected shape is `Event.Malformed`, never a panic (the envelope is
//! read by [`crate::handlers`], the detail here).

use crate::error::{Error, Result};
use crate::pipeline::names;
use crate::pipeline::WaitKind;
use crate::ports::{Cloud, Coordination, ResourceShare};
use crate::workflow::waits::{wake_clone, wake_share, WaitOutcome};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

/// An EventBridge event as delivered, its detail not yet read.
pub type Event = EventBridgeEvent<serde_json::Value>;

pub const RAM_SOURCE: &str = "aws.ram";
pub const RAM_DETAIL_TYPE: &str = "Resource Sharing State Change";
pub const RDS_SOURCE: &str = "aws.rds";
pub const RDS_CLUSTER_EVENT: &str = "RDS DB Cluster Event";
pub const RDS_INSTANCE_EVENT: &str = "RDS DB Instance Event";

/// What a handler did with one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventReport {
    /// Resources whose waiting step was completed (success or failure).
    pub woken: Vec<String>,
    /// Resources with a waiting step that are not ready yet (heartbeat sent).
    pub still_waiting: Vec<String>,
    /// Resources nobody waits for, or events of another kind.
    pub ignored: Vec<String>,
}

/// Every RAM ARN the event names, in `resources` or anywhere in `detail`.
fn ram_arns(event: &Event) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) if s.starts_with("arn:") && s.contains(":ram:") => {
                out.push(s.clone())
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut arns: Vec<String> = event.resources.clone().unwrap_or_default();
    walk(&event.detail, &mut arns);
    arns.retain(|a| a.contains(":ram:"));
    arns.sort();
    arns.dedup();
    arns
}

pub async fn on_ram_event<C: Cloud>(cloud: &C, event: &Event) -> Result<EventReport> {
    let mut report = EventReport::default();
    if event.source != RAM_SOURCE || event.detail_type != RAM_DETAIL_TYPE {
        tracing::info!(source = %event.source, detail_type = %event.detail_type, "not a RAM share event; ignored");
        report
            .ignored
            .push(format!("{} / {}", event.source, event.detail_type));
        return Ok(report);
    }
    let mut shares = Vec::new();
    for arn in ram_arns(event) {
        if arn.contains(":resource-share-invitation/") {
            match cloud.share().share_of_invitation(&arn).await? {
                Some(share) => shares.push(share),
                None => {
                    tracing::info!(invitation = %arn, "invitation unknown to this account; ignored");
                    report.ignored.push(arn);
                }
            }
        } else if arn.contains(":resource-share/") {
            shares.push(arn);
        } else {
            report.ignored.push(arn);
        }
    }
    shares.sort();
    shares.dedup();
    for share in shares {
        match cloud
            .coordination()
            .get_wait(WaitKind::Share, &share)
            .await?
        {
            None => {
                tracing::info!(share = %share, "no step waits for this share; ignored");
                report.ignored.push(share);
            }
            Some(wait) => match wake_share(cloud, &wait).await? {
                WaitOutcome::CompletedNow => report.woken.push(share),
                WaitOutcome::Waiting => report.still_waiting.push(share),
            },
        }
    }
    if report.woken.is_empty() && report.still_waiting.is_empty() && report.ignored.is_empty() {
        return Err(Error::EventMalformed {
            reason: "the RAM event names no resource share or invitation".into(),
        });
    }
    Ok(report)
}

/// The `detail` of an RDS event, as far as it is used.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RdsDetail {
    #[serde(default)]
    source_identifier: Option<String>,
    #[serde(default)]
    source_arn: Option<String>,
    #[serde(rename = "EventID", default)]
    event_id: Option<String>,
}

impl RdsDetail {
    /// The cluster's or instance's identifier: the last part of
    /// `SourceArn` (`arn:aws:rds:<region>:<account>:cluster:<id>`), else
    /// `SourceIdentifier` without the `rds:` prefix AWS's published samples
    /// show ("rds:my-db-cluster") and `DescribeEvents` does not: either
    /// form names the same resource.
    fn resource_id(&self) -> Option<String> {
        let from_arn = self.source_arn.as_deref().and_then(|arn| {
            let parts: Vec<&str> = arn.splitn(7, ':').collect();
            match parts.as_slice() {
                ["arn", _, "rds", _, _, "cluster" | "db", id] if !id.is_empty() => {
                    Some(id.to_string())
                }
                _ => None,
            }
        });
        from_arn.or_else(|| {
            self.source_identifier
                .as_deref()
                .map(|id| id.strip_prefix("rds:").unwrap_or(id))
                .filter(|id| !id.is_empty())
                .map(str::to_string)
        })
    }
}

pub async fn on_rds_event<C: Cloud>(cloud: &C, event: &Event) -> Result<EventReport> {
    let mut report = EventReport::default();
    if event.source != RDS_SOURCE
        || ![RDS_CLUSTER_EVENT, RDS_INSTANCE_EVENT].contains(&event.detail_type.as_str())
    {
        tracing::info!(source = %event.source, detail_type = %event.detail_type, "not an RDS cluster/instance event; ignored");
        report
            .ignored
            .push(format!("{} / {}", event.source, event.detail_type));
        return Ok(report);
    }
    let detail: RdsDetail =
        serde_json::from_value(event.detail.clone()).map_err(|e| Error::EventMalformed {
            reason: format!("RDS event detail: {e}"),
        })?;
    let source = detail.resource_id().ok_or_else(|| Error::EventMalformed {
        reason: "the RDS event names no source (neither SourceArn nor SourceIdentifier)".into(),
    })?;
    // Our writer instance is named "<clone id>-writer"; an instance event
    // is mapped to its cluster by that name, then confirmed by Describe.
    let clone_id = if event.detail_type == RDS_INSTANCE_EVENT {
        names::clone_of_writer(&source)
            .unwrap_or(&source)
            .to_string()
    } else {
        source.clone()
    };
    match cloud
        .coordination()
        .get_wait(WaitKind::Clone, &clone_id)
        .await?
    {
        None => {
            tracing::info!(resource = %source, event_id = ?detail.event_id, "no step waits for this resource; ignored");
            report.ignored.push(source);
        }
        Some(wait) => {
            tracing::info!(clone = %clone_id, event_id = ?detail.event_id, "event for a waiting clone; checking with Describe");
            match wake_clone(cloud, &wait).await? {
                WaitOutcome::CompletedNow => report.woken.push(clone_id),
                WaitOutcome::Waiting => report.still_waiting.push(clone_id),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::RdsDetail;

    fn detail(json: serde_json::Value) -> RdsDetail {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_rds_event_names_its_resource_by_arn_or_by_identifier_with_or_without_the_prefix() {
        // The detail of AWS's published cluster sample (RDS user guide,
        // "Examples of Amazon RDS events").
        let sample = detail(serde_json::json!({
            "EventCategories": ["notification"],
            "SourceType": "CLUSTER",
            "SourceArn": "arn:aws:rds:us-east-1:123456789012:cluster:my-db-cluster",
            "Date": "2018-10-06T12:26:13.882Z",
            "Message": "Database cluster has been patched",
            "SourceIdentifier": "rds:my-db-cluster",
            "EventID": "RDS-EVENT-0173"
        }));
        assert_eq!(sample.resource_id().as_deref(), Some("my-db-cluster"));
        let prefixed = detail(serde_json::json!({"SourceIdentifier": "rds:clonesync-a-writer"}));
        assert_eq!(
            prefixed.resource_id().as_deref(),
            Some("clonesync-a-writer")
        );
        let bare = detail(serde_json::json!({"SourceIdentifier": "clonesync-a"}));
        assert_eq!(bare.resource_id().as_deref(), Some("clonesync-a"));
        let instance = detail(serde_json::json!({
            "SourceArn": "arn:aws:rds:eu-west-1:123456789012:db:clonesync-a-writer",
            "SourceIdentifier": "something else"
        }));
        assert_eq!(
            instance.resource_id().as_deref(),
            Some("clonesync-a-writer")
        );
        for nothing in [
            serde_json::json!({}),
            serde_json::json!({"SourceIdentifier": "rds:"}),
            serde_json::json!({"SourceArn": "arn:aws:rds:eu-west-1:1:pg:x"}),
        ] {
            assert_eq!(detail(nothing.clone()).resource_id(), None, "{nothing}");
        }
    }
}
