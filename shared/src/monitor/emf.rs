//! A [`MonitorReport`] as CloudWatch Embedded Metric Format documents, one
//! JSON object per line on stdout: CloudWatch Logs turns them into metrics,
//! so the monitor needs no CloudWatch API call.
//!
//! The structure follows the specification
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
//! a root member `_aws` with `Timestamp` (ms since the epoch) and
//! `CloudWatchMetrics`, a list of directives of `Namespace`, `Dimensions`
//! (dimension sets, at most 30 keys each) and `Metrics` (at most 100
//! definitions, each a `Name` and a `Unit`); every dimension key is a
//! string member of the root and every metric name a number member.
//! Documents with more metrics are split.
//!
//! Namespace `clonesync`. Documents and their dimensions:
//!
//! | dimensions | metrics | when |
//! | --- | --- | --- |
//! | `Pipeline`, `Slot` | `SlotActive`, `SlotLagBytes`, `SlotRetainedBytes`, `SlotSafeWalBytes` | each pipeline's slot |
//! | `Source`, `Slot` | the same | each logical slot no pipeline owns (property `Owned: false`) |
//! | `Pipeline` | `ApplyWorkerRunning`, `SubscriptionEnabled`, `ApplyLagSeconds`, `SecondsSinceLastMessage`, `ApplyErrors`, `SyncErrors`, `SchemaChangesPending` (where the target applies schema changes), `SchemaChangeQueueRows` and `SchemaChangeQueueBytes` (the source's queue after the run pruned it, where there is one), `SourceTablesUnwritable` (published tables whose UPDATE and DELETE fail on the source; the line's `UnwritableTables` property names up to 50 with why), `SequenceHeadroom` (the smallest, in increments, over the sequences in scope, where there is one), `MonitorErrors`; where the target counts conflicts (PostgreSQL 18+) also `Conflicts` and one `Conflict<Kind>` per kind (`ConflictInsertExists`, `ConflictUpdateMissing`, ...) | each pipeline |
//! | `Service` (= `clonesync`) | `PipelinesChecked`, `MonitorErrors`, `MaxLagBytes`, `MaxRetainedBytes`, `MaxApplyLagSeconds`, `InactiveSlots`, `UnownedSlots`, `PipelinesNotApplying`, `ApplyErrors`, `SyncErrors`, `Conflicts`, `SchemaChangesPending`, `SourceTablesUnwritable` (sums over pipelines) | once per run, also with no pipeline (the alarms' metrics) |
//!
//! A figure that could not be read is left out, never written as null.

use crate::monitor::{MonitorReport, TargetReading};
use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "clonesync";
pub const SERVICE: &str = "clonesync";
/// The specification's limits.
pub const MAX_METRICS_PER_DIRECTIVE: usize = 100;
pub const MAX_KEYS_PER_DIMENSION_SET: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Seconds,
    Count,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
            Unit::Count => "Count",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub unit: Unit,
    pub value: f64,
}

fn metric(name: &str, unit: Unit, value: impl Into<Option<f64>>) -> Option<Metric> {
    value.into().map(|value| Metric {
        name: name.to_string(),
        unit,
        value,
    })
}

fn flag(value: bool) -> f64 {
    if value {
        1.0
    } else {
        0.0
    }
}

/// Documents for one set of dimension values: the metrics split in chunks
/// the specification allows, each chunk carrying the dimensions and the
/// properties.
pub fn documents(
    dimensions: &[(&str, &str)],
    metrics: &[Metric],
    properties: &[(&str, Value)],
    timestamp_ms: u64,
) -> Vec<String> {
    let keys: Vec<&str> = dimensions
        .iter()
        .map(|(k, _)| *k)
        .take(MAX_KEYS_PER_DIMENSION_SET)
        .collect();
    metrics
        .chunks(MAX_METRICS_PER_DIRECTIVE)
        .map(|chunk| {
            let mut root = Map::new();
            for (key, value) in properties {
                root.insert(key.to_string(), value.clone());
            }
            for (key, value) in dimensions {
                root.insert(key.to_string(), json!(value));
            }
            for m in chunk {
                root.insert(m.name.clone(), json!(m.value));
            }
            root.insert(
                "_aws".into(),
                json!({
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [keys],
                        "Metrics": chunk
                            .iter()
                            .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
                            .collect::<Vec<_>>(),
                    }],
                }),
            );
            Value::Object(root).to_string()
        })
        .collect()
}

/// How many of a pipeline's unwritable tables its line names (the
/// `SourceTablesUnwritable` metric counts them all).
pub const UNWRITABLE_NAMED: usize = 50;

/// Every line of one monitor run.
pub fn lines(report: &MonitorReport, timestamp_ms: u64) -> Vec<String> {
    let mut out = Vec::new();
    for (source, slot) in report.slots() {
        let metrics: Vec<Metric> = [
            metric("SlotActive", Unit::Count, flag(slot.active)),
            metric("SlotLost", Unit::Count, flag(slot.is_lost())),
            metric(
                "SlotLagBytes",
                Unit::Bytes,
                slot.lag_bytes.map(|v| v as f64),
            ),
            metric(
                "SlotRetainedBytes",
                Unit::Bytes,
                slot.retained_bytes.map(|v| v as f64),
            ),
            metric(
                "SlotSafeWalBytes",
                Unit::Bytes,
                slot.safe_wal_size.map(|v| v as f64),
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut properties = vec![
            ("Owned", json!(slot.pipeline.is_some())),
            ("Database", json!(slot.database)),
        ];
        if let Some(status) = &slot.wal_status {
            properties.push(("WalStatus", json!(status)));
        }
        if let Some(reason) = &slot.invalidation_reason {
            properties.push(("InvalidationReason", json!(reason)));
        }
        let dimensions: Vec<(&str, &str)> = match &slot.pipeline {
            Some(pipeline) => vec![("Pipeline", pipeline), ("Slot", &slot.slot)],
            None => vec![("Source", source), ("Slot", &slot.slot)],
        };
        if slot.pipeline.is_some() {
            properties.push(("Source", json!(source)));
        }
        out.extend(documents(&dimensions, &metrics, &properties, timestamp_ms));
    }
    for pipeline in &report.pipelines {
        // A pipeline of several triples reports its subscriptions as one.
        let mine: Vec<&TargetReading> = report
            .targets
            .iter()
            .filter(|t| &t.pipeline == pipeline)
            .collect();
        let combined = TargetReading::combined(&mine);
        let target = combined.as_ref();
        let errors = report
            .errors
            .iter()
            .filter(|e| &e.pipeline == pipeline)
            .count();
        let metrics: Vec<Metric> = [
            target.and_then(|t| metric("ApplyWorkerRunning", Unit::Count, flag(t.apply_worker))),
            target.and_then(|t| metric("SubscriptionEnabled", Unit::Count, flag(t.enabled))),
            target.and_then(|t| metric("Paused", Unit::Count, flag(t.paused))),
            target.and_then(|t| metric("ApplyLagSeconds", Unit::Seconds, t.apply_lag_seconds)),
            target.and_then(|t| {
                metric(
                    "SecondsSinceLastMessage",
                    Unit::Seconds,
                    t.seconds_since_last_message,
                )
            }),
            target
                .and_then(|t| metric("ApplyErrors", Unit::Count, t.apply_errors.map(|n| n as f64))),
            target.and_then(|t| metric("SyncErrors", Unit::Count, t.sync_errors.map(|n| n as f64))),
            target.and_then(|t| {
                metric(
                    "Conflicts",
                    Unit::Count,
                    t.conflicts_total().map(|n| n as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "SchemaChangesPending",
                    Unit::Count,
                    t.schema_changes_pending.map(|n| n as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "TablesNotReplicated",
                    Unit::Count,
                    t.tables_not_replicated.as_ref().map(|l| l.len() as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "TablesNotPublished",
                    Unit::Count,
                    t.tables_not_published.as_ref().map(|l| l.len() as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "SourceTablesUnwritable",
                    Unit::Count,
                    t.tables_unwritable.as_ref().map(|l| l.len() as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "SchemaChangeReplaysCancelled",
                    Unit::Count,
                    t.replays_cancelled.map(|n| n as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "SchemaChangesInFlight",
                    Unit::Count,
                    t.schema_changes_in_flight.map(|f| f.commands as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "OldestSchemaChangeInFlightSeconds",
                    Unit::Seconds,
                    t.schema_changes_in_flight
                        .map(|f| f.oldest_seconds.unwrap_or(0.0)),
                )
            }),
            target.and_then(|t| {
                metric(
                    "SchemaChangeQueueRows",
                    Unit::Count,
                    t.source_queue.map(|q| q.rows as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "SchemaChangeQueueBytes",
                    Unit::Bytes,
                    t.source_queue.map(|q| q.bytes as f64),
                )
            }),
            target.and_then(|t| {
                metric(
                    "SequenceHeadroom",
                    Unit::Count,
                    t.smallest_sequence_headroom
                        .as_ref()
                        .map(|(_, n)| *n as f64),
                )
            }),
            metric("MonitorErrors", Unit::Count, errors as f64),
        ]
        .into_iter()
        .flatten()
        .chain(
            target
                .and_then(|t| t.conflicts.as_ref())
                .into_iter()
                .flatten()
                .map(|(kind, count)| Metric {
                    name: conflict_metric_name(kind),
                    unit: Unit::Count,
                    value: *count as f64,
                }),
        )
        .collect();
        let failed: Vec<Value> = report
            .errors
            .iter()
            .filter(|e| &e.pipeline == pipeline)
            .map(|e| json!({"Side": e.side, "ErrorType": e.error_type}))
            .collect();
        let mut properties = vec![("Errors", Value::Array(failed))];
        // The count alarms; the names say what to fix (a bounded list, so
        // the line stays small whatever the database holds).
        if let Some(tables) = target
            .and_then(|t| t.tables_unwritable.as_ref())
            .filter(|l| !l.is_empty())
        {
            properties.push((
                "UnwritableTables",
                json!(tables.iter().take(UNWRITABLE_NAMED).collect::<Vec<_>>()),
            ));
        }
        out.extend(documents(
            &[("Pipeline", pipeline)],
            &metrics,
            &properties,
            timestamp_ms,
        ));
    }
    out.extend(documents(
        &[("Service", SERVICE)],
        &summary(report),
        &[
            ("TookMs", json!(report.took_ms)),
            ("Connections", json!(report.connections)),
        ],
        timestamp_ms,
    ));
    out
}

/// `insert_exists` → `ConflictInsertExists`: one metric per kind the
/// server counts, named as CloudWatch names go.
pub fn conflict_metric_name(kind: &str) -> String {
    let mut name = String::from("Conflict");
    for word in kind.split('_').filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
}

/// The run's figures the alarms watch: worst lag, most WAL retained, any
/// inactive slot, any error, every apply error and conflict. Zero when
/// there is nothing to watch, so a missing value means the monitor did not
/// run.
pub fn summary(report: &MonitorReport) -> Vec<Metric> {
    let max = |values: &mut dyn Iterator<Item = f64>| values.fold(0.0_f64, f64::max);
    let owned_lag = max(&mut report
        .slots()
        .filter(|(_, s)| s.pipeline.is_some())
        .filter_map(|(_, s)| s.lag_bytes.map(|v| v as f64)));
    let retained = max(&mut report
        .slots()
        .filter_map(|(_, s)| s.retained_bytes.map(|v| v as f64)));
    let apply_lag = max(&mut report.targets.iter().filter_map(|t| t.apply_lag_seconds));
    let paused_pipelines: Vec<&str> = report
        .targets
        .iter()
        .filter(|t| t.paused)
        .map(|t| t.pipeline.as_str())
        .collect();
    let inactive = report
        .slots()
        .filter(|(_, s)| !s.active)
        .filter(|(_, s)| {
            !s.pipeline
                .as_deref()
                .is_some_and(|p| paused_pipelines.contains(&p))
        })
        .count();
    let lost = report.slots().filter(|(_, s)| s.is_lost()).count();
    let unowned = report.slots().filter(|(_, s)| s.pipeline.is_none()).count();
    // A paused pipeline has no worker on purpose: it is counted apart, so
    // the "not applying" alarm does not fire for it (its slot's retained
    // WAL still does).
    let not_applying = report
        .targets
        .iter()
        .filter(|t| !t.apply_worker && !t.paused)
        .map(|t| t.pipeline.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let paused = report
        .targets
        .iter()
        .filter(|t| t.paused)
        .map(|t| t.pipeline.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let sum = |values: &mut dyn Iterator<Item = i64>| values.sum::<i64>() as f64;
    let apply_errors = sum(&mut report.targets.iter().filter_map(|t| t.apply_errors));
    let sync_errors = sum(&mut report.targets.iter().filter_map(|t| t.sync_errors));
    let conflicts = sum(&mut report.targets.iter().filter_map(|t| t.conflicts_total()));
    let pending = sum(&mut report
        .targets
        .iter()
        .filter_map(|t| t.schema_changes_pending));
    let unwritable = report
        .targets
        .iter()
        .filter_map(|t| t.tables_unwritable.as_ref())
        .map(Vec::len)
        .sum::<usize>() as f64;
    vec![
        Metric {
            name: "SchemaChangesPending".into(),
            unit: Unit::Count,
            value: pending,
        },
        // UPDATE and DELETE failing on a source table clonesync publishes:
        // production writes fail until someone acts.
        Metric {
            name: "SourceTablesUnwritable".into(),
            unit: Unit::Count,
            value: unwritable,
        },
        Metric {
            name: "PipelinesChecked".into(),
            unit: Unit::Count,
            value: report.pipelines.len() as f64,
        },
        Metric {
            name: "MonitorErrors".into(),
            unit: Unit::Count,
            value: report.errors.len() as f64,
        },
        Metric {
            name: "MaxLagBytes".into(),
            unit: Unit::Bytes,
            value: owned_lag,
        },
        Metric {
            name: "MaxRetainedBytes".into(),
            unit: Unit::Bytes,
            value: retained,
        },
        Metric {
            name: "MaxApplyLagSeconds".into(),
            unit: Unit::Seconds,
            value: apply_lag,
        },
        Metric {
            name: "InactiveSlots".into(),
            unit: Unit::Count,
            value: inactive as f64,
        },
        // A lost slot can never serve its copy again: re-seed.
        Metric {
            name: "LostSlots".into(),
            unit: Unit::Count,
            value: lost as f64,
        },
        Metric {
            name: "UnownedSlots".into(),
            unit: Unit::Count,
            value: unowned as f64,
        },
        Metric {
            name: "PipelinesNotApplying".into(),
            unit: Unit::Count,
            value: not_applying as f64,
        },
        Metric {
            name: "PipelinesPaused".into(),
            unit: Unit::Count,
            value: paused as f64,
        },
        // Counters since each subscription was made: the apply error alarm
        // watches their increase, the conflict alarm any value above zero
        // (a conflict is a divergence that stays until a re-seed).
        Metric {
            name: "ApplyErrors".into(),
            unit: Unit::Count,
            value: apply_errors,
        },
        Metric {
            name: "SyncErrors".into(),
            unit: Unit::Count,
            value: sync_errors,
        },
        Metric {
            name: "Conflicts".into(),
            unit: Unit::Count,
            value: conflicts,
        },
    ]
}

/// What a verification counted, as `verify-report` has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationCounts<'a> {
    pub pipeline_id: &'a str,
    pub tables: usize,
    pub differing: usize,
    pub unsettled: usize,
}

/// A verification's figures (`verify-report`): `TablesDiffering`,
/// `TablesUnsettled` and `TablesVerified`, per pipeline and for the
/// service (the `tables-differing` alarm's metric).
pub fn verification_lines(counts: &VerificationCounts<'_>, timestamp_ms: u64) -> Vec<String> {
    let figures = [
        ("TablesDiffering", counts.differing),
        ("TablesUnsettled", counts.unsettled),
        ("TablesVerified", counts.tables),
    ]
    .into_iter()
    .map(|(name, n)| Metric {
        name: name.into(),
        unit: Unit::Count,
        value: n as f64,
    })
    .collect::<Vec<_>>();
    let mut lines = documents(
        &[("Pipeline", counts.pipeline_id)],
        &figures,
        &[],
        timestamp_ms,
    );
    lines.extend(documents(
        &[("Service", SERVICE)],
        &figures,
        &[],
        timestamp_ms,
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn conflict_kinds_become_metric_names() {
        assert_eq!(
            conflict_metric_name("insert_exists"),
            "ConflictInsertExists"
        );
        assert_eq!(
            conflict_metric_name("multiple_unique_conflicts"),
            "ConflictMultipleUniqueConflicts"
        );
    }

    #[test]
    fn more_than_100_metrics_are_split_and_keep_their_dimensions() {
        let metrics: Vec<Metric> = (0..250)
            .map(|i| Metric {
                name: format!("M{i}"),
                unit: Unit::Count,
                value: i as f64,
            })
            .collect();
        let docs = documents(&[("Pipeline", "p")], &metrics, &[], 1);
        assert_eq!(docs.len(), 3);
        let counts: Vec<usize> = docs
            .iter()
            .map(|d| {
                let v: Value = serde_json::from_str(d).unwrap();
                assert_eq!(v["Pipeline"], "p");
                v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(counts, [100, 100, 50]);
    }

    #[test]
    fn a_pipeline_of_several_subscriptions_reports_them_as_one() {
        let reading = |subscription: &str, enabled: bool, errors: i64, lag: f64| TargetReading {
            pipeline: "p".into(),
            subscription: subscription.into(),
            enabled,
            apply_worker: enabled,
            seconds_since_last_message: Some(lag),
            apply_lag_seconds: Some(lag),
            apply_errors: Some(errors),
            sync_errors: Some(0),
            conflicts: Some(BTreeMap::from([("insert_exists".to_string(), errors)])),
            paused: false,
            schema_changes_pending: (subscription == "a").then_some(3),
            smallest_sequence_headroom: (subscription == "a").then(|| ("public.s".to_string(), 42)),
            schema_changes_in_flight: None,
            replays_cancelled: None,
            tables_not_replicated: None,
            tables_not_published: None,
            tables_unwritable: (subscription == "a").then(|| vec!["public.g: why".to_string()]),
            subscription_oid: Some(16405),
            source_queue: Some(crate::pg::ddl::QueueSize {
                pruned: 1,
                rows: 5,
                bytes: 8192,
            }),
        };
        let report = MonitorReport {
            pipelines: vec!["p".into()],
            targets: vec![reading("a", true, 1, 2.0), reading("b", false, 2, 9.0)],
            ..MonitorReport::default()
        };
        let docs: Vec<Value> = lines(&report, 1)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &Value| v["Pipeline"] == "p")
            .collect();
        assert_eq!(docs.len(), 1, "one document per pipeline: {docs:?}");
        let doc = &docs[0];
        assert_eq!(doc["ApplyErrors"], 3.0);
        assert_eq!(doc["ConflictInsertExists"], 3.0);
        assert_eq!(doc["SubscriptionEnabled"], 0.0, "one is disabled");
        assert_eq!(doc["ApplyWorkerRunning"], 0.0);
        assert_eq!(doc["ApplyLagSeconds"], 9.0, "the worst");
        assert_eq!(
            doc["SchemaChangesPending"], 3.0,
            "counted once per database"
        );
        let service: Vec<Value> = lines(&report, 1)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &Value| v["Service"] == "clonesync")
            .collect();
        assert_eq!(service[0]["SchemaChangesPending"], 3.0);
        assert_eq!(doc["SourceTablesUnwritable"], 1.0, "once per database");
        assert_eq!(doc["UnwritableTables"], json!(["public.g: why"]));
        assert_eq!(service[0]["SourceTablesUnwritable"], 1.0);
        assert_eq!(doc["SequenceHeadroom"], 42.0, "the smallest");
        assert_eq!(doc["SchemaChangeQueueRows"], 10.0, "summed over databases");
        assert_eq!(doc["SchemaChangeQueueBytes"], 16384.0);
    }
}
