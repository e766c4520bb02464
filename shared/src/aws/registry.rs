//! The pipeline registry: one DynamoDB table (partition key `pk`, string)
//! holding two kinds of item.
//!
//! - `wait#share#<share ARN>` / `wait#clone#<clone id>`: the task token of
//!   a step waiting for that resource, written by the waiting step and read
//!   by the event handler that wakes it. Deleting is conditional on the
//!   token, so a late duplicate event never removes a newer wait. Items
//!   carry `expires_at` (the table's TTL attribute).
//! - `pipeline#<id>`: a pipeline that reached streaming, with the
//!   identifiers the lag monitor needs (never a credential).
//!
//! Writes are puts of whole items: running one twice leaves one item.

use crate::aws::fault::classify;
use crate::error::{Error, Result};
use crate::pipeline::{Expected, PipelineId, PipelineRecord, Wait, WaitKind};
use crate::ports::coordination::Scanned;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SERVICE: &str = "dynamodb";

/// The registry item key of a wait.
fn wait_key(kind: WaitKind, resource: &str) -> String {
    match kind {
        WaitKind::Share => format!("wait#share#{resource}"),
        WaitKind::Clone => format!("wait#clone#{resource}"),
    }
}

/// The DynamoDB table, with the client to reach it.
pub struct Registry<'a> {
    pub client: &'a aws_sdk_dynamodb::Client,
    pub table: &'a str,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The distinct values of `part` over the triples, comma-separated.
fn joined(
    triples: &[crate::pipeline::Triple],
    part: impl Fn(&crate::pipeline::Triple) -> String,
) -> String {
    let mut values: Vec<String> = Vec::new();
    for value in triples.iter().map(part) {
        if !values.contains(&value) {
            values.push(value);
        }
    }
    values.join(",")
}

fn text<'i>(item: &'i HashMap<String, AttributeValue>, key: &str) -> Option<&'i str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

impl Registry<'_> {
    pub async fn put_wait(&self, wait: &Wait, keep_for: Duration) -> Result<()> {
        self.client
            .put_item()
            .table_name(self.table)
            .item("pk", s(wait_key(wait.kind, &wait.resource)))
            .item("pipeline", s(wait.pipeline_id.as_str()))
            .item("resource", s(&wait.resource))
            .item("task_token", s(&wait.task_token))
            .item(
                "expires_at",
                AttributeValue::N((now() + keep_for.as_secs()).to_string()),
            )
            .send()
            .await
            .map_err(|e| classify(SERVICE, "PutItem", e))?;
        Ok(())
    }

    pub async fn get_wait(&self, kind: WaitKind, resource: &str) -> Result<Option<Wait>> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", s(wait_key(kind, resource)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let expired = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|at| at < now());
        match (text(item, "pipeline"), text(item, "task_token")) {
            (Some(pipeline), Some(token)) if !expired => Ok(Some(Wait {
                kind,
                resource: resource.to_string(),
                pipeline_id: PipelineId::new(pipeline)?,
                task_token: token.to_string(),
            })),
            _ => Ok(None),
        }
    }

    /// Remove a wait, only if it still holds `task_token`.
    pub async fn delete_wait(&self, wait: &Wait) -> Result<bool> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError as E;
        match self
            .client
            .delete_item()
            .table_name(self.table)
            .key("pk", s(wait_key(wait.kind, &wait.resource)))
            .condition_expression("task_token = :token")
            .expression_attribute_values(":token", s(&wait.task_token))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(E::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(classify(SERVICE, "DeleteItem", e)),
            },
        }
    }

    /// Write `record` when the stored one is as `expected` (a condition of
    /// the write itself); `Pipeline.Changed` otherwise.
    pub async fn put_pipeline(&self, record: &PipelineRecord, expected: &Expected) -> Result<()> {
        let json = serde_json::to_string(record).map_err(|cause| Error::OutputUnencodable {
            what: "the pipeline's registry record".into(),
            cause,
        })?;
        let triples = record.triples();
        // The record is the JSON; the inventory's main names are also
        // attributes of their own, for whoever reads the table in the
        // console (the clone's writer instance is derived from its id).
        let mut put = self
            .client
            .put_item()
            .table_name(self.table)
            .item("pk", s(format!("pipeline#{}", record.pipeline.id)))
            .item("pipeline", s(record.pipeline.id.to_string()))
            .item("phase", s(record.phase.as_str()))
            // Several triples: their names, comma-separated, for a
            // console reader; the record is what the code reads.
            .item("slot", s(joined(&triples, |t| t.slot.to_string())))
            .item(
                "publication",
                s(joined(&triples, |t| t.publication.to_string())),
            )
            .item(
                "subscription",
                s(joined(&triples, |t| t.subscription.to_string())),
            )
            .item("triples", AttributeValue::N(triples.len().to_string()))
            .item("source_cluster", s(record.source.cluster_arn.clone()))
            .item(
                "source_database",
                s(joined(&triples, |t| t.database.clone())),
            )
            .item("record", s(json));
        if let Some(clone_id) = record.clone_id() {
            put = put.item("clone_cluster", s(clone_id.to_string()));
        }
        if let Some(instance) = record.clone_instance_id() {
            put = put.item("clone_instance", s(instance));
        }
        if let Some(share) = &record.share {
            put = put.item("share", s(share.arn.clone())).item(
                "share_made_by_pipeline",
                AttributeValue::Bool(share.created),
            );
        }
        if let Some(execution) = &record.setup_execution {
            put = put.item("setup_execution", s(execution.clone()));
        }
        put = match expected {
            Expected::Absent => put.condition_expression("attribute_not_exists(pk)"),
            Expected::AsRead {
                setup_execution: Some(execution),
                phase,
            } => put
                .condition_expression("setup_execution = :execution AND phase = :phase")
                .expression_attribute_values(":execution", s(execution.clone()))
                .expression_attribute_values(":phase", s(phase.as_str())),
            Expected::AsRead {
                setup_execution: None,
                phase,
            } => put
                .condition_expression("attribute_not_exists(setup_execution) AND phase = :phase")
                .expression_attribute_values(":phase", s(phase.as_str())),
            Expected::OwnedBy(execution) => put
                .condition_expression("attribute_not_exists(pk) OR setup_execution = :execution")
                .expression_attribute_values(":execution", s(execution.clone())),
            Expected::Unowned => put.condition_expression("attribute_not_exists(setup_execution)"),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Err(Error::PipelineChanged {
                        pipeline: record.pipeline.id.to_string(),
                        expected: format!("{expected:?}"),
                    })
                }
                _ => Err(classify(SERVICE, "PutItem", e)),
            },
        }
    }

    pub async fn get_pipeline(&self, id: &PipelineId) -> Result<Option<PipelineRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", s(format!("pipeline#{id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetItem", e))?;
        out.item()
            .and_then(|item| text(item, "record"))
            .map(decode)
            .transpose()
    }

    /// Every registered pipeline; a record that does not decode (damaged,
    /// or written by another version) fails the call.
    pub async fn list_pipelines(&self) -> Result<Vec<PipelineRecord>> {
        let (records, unreadable) = self.scan_pipelines().await?;
        match unreadable.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(records),
        }
    }

    /// Every registered pipeline, and apart the ids of records that do not
    /// decode with why: the lag monitor reports those and goes on with the
    /// others.
    pub async fn scan_pipelines(&self) -> Result<Scanned> {
        let mut records = Vec::new();
        let mut unreadable = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(self.table)
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_values(":prefix", s("pipeline#"))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, "Scan", e))?;
            for item in page.items() {
                let id = text(item, "pk")
                    .and_then(|pk| pk.strip_prefix("pipeline#"))
                    .unwrap_or("?")
                    .to_string();
                match text(item, "record").map(decode) {
                    Some(Ok(record)) => records.push(record),
                    Some(Err(error)) => unreadable.push((id, error)),
                    None => unreadable.push((
                        id,
                        Error::Aws {
                            service: SERVICE.into(),
                            operation: "Scan".into(),
                            code: "Decode".into(),
                            message: "pipeline item has no record".into(),
                            cause: None,
                        },
                    )),
                }
            }
        }
        Ok((records, unreadable))
    }

    pub async fn delete_pipeline(&self, id: &PipelineId) -> Result<()> {
        self.client
            .delete_item()
            .table_name(self.table)
            .key("pk", s(format!("pipeline#{id}")))
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DeleteItem", e))?;
        Ok(())
    }

    pub fn registered_now() -> u64 {
        now()
    }
}

fn decode(json: &str) -> Result<PipelineRecord> {
    serde_json::from_str(json).map_err(|e| Error::Aws {
        service: SERVICE.into(),
        operation: "GetItem".into(),
        code: "Decode".into(),
        message: format!("pipeline record does not decode: {e}"),
        cause: None,
    })
}
