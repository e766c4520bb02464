//! Verification of a registered pipeline's copy by content, while writes go
//! on: the plan (which tables, after checking the pipeline streams), one
//! table ([`crate::steps::verify_table`]), and the summary with its
//! metrics. The `verify` state machine maps `verify-table` over the plan's
//! tables; `clonesync verify` runs the same three here one after the other.

use crate::error::{Error, Result};
use crate::pg::TableName;
use crate::pipeline::{Phase, PipelineId, PipelineRecord};
use crate::ports::{Clones, Cloud, ControlPlane};
use crate::steps;
use crate::steps::verify_table::{self, Login, Sides, TableVerdict, Verdict, VerifyOptions};
use crate::workflow::Sessions;
use serde::{Deserialize, Serialize};

/// The input of `verify-plan` (and of the `verify` state machine).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub pipeline_id: PipelineId,
    /// Only these tables (each must be on the source and in scope); every
    /// table in scope when absent.
    #[serde(default)]
    pub tables: Option<Vec<TableName>>,
    #[serde(default)]
    pub options: VerifyOptions,
}

/// One table to verify: a `verify-table` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyItem {
    pub pipeline_id: PipelineId,
    pub database: String,
    pub table: TableName,
    #[serde(default)]
    pub options: VerifyOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPlan {
    pub pipeline_id: PipelineId,
    pub items: Vec<VerifyItem>,
}

/// The input of `verify-report`: the Map's results.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyResults {
    pub pipeline_id: PipelineId,
    pub results: Vec<TableVerdict>,
    /// Fail with `Verify.Differs` unless every table is equal (the
    /// switchover's verification).
    #[serde(default)]
    pub require_equal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySummary {
    pub pipeline_id: PipelineId,
    pub tables: usize,
    pub equal: usize,
    /// `database: table` of each table that differs.
    pub differing: Vec<String>,
    pub unsettled: Vec<String>,
    pub all_equal: bool,
}

impl VerifySummary {
    /// Its counts, as the verification metrics take them.
    pub fn counts(&self) -> crate::monitor::emf::VerificationCounts<'_> {
        crate::monitor::emf::VerificationCounts {
            pipeline_id: &self.pipeline_id,
            tables: self.tables,
            differing: self.differing.len(),
            unsettled: self.unsettled.len(),
        }
    }
}

fn not_streaming(record: &PipelineRecord, why: &str) -> Error {
    Error::NotStreaming {
        detail: format!(
            "pipeline {} {why}: only a streaming pipeline's copy can be verified",
            record.pipeline.id
        ),
    }
}

/// How long a pipeline may take to stream again before it counts as not
/// streaming: an apply worker that restarted (a crash, a terminated
/// backend) is started again within `wal_retrieve_retry_interval` (5 s by
/// default) and then reconnects to its slot.
const STREAMING_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

/// Each subscription of the pipeline applies and each slot is active,
/// within [`STREAMING_SETTLE`].
pub async fn check_streaming<P: ControlPlane>(plane: &P, record: &PipelineRecord) -> Result<()> {
    let deadline = std::time::Instant::now() + STREAMING_SETTLE;
    loop {
        match streaming_now(plane, record).await {
            Err(Error::NotStreaming { .. })
                if record.phase == Phase::Streaming && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

/// [`check_streaming`] at this moment.
async fn streaming_now<P: ControlPlane>(plane: &P, record: &PipelineRecord) -> Result<()> {
    let info = match (&record.clone_info, record.phase) {
        (None, _) | (_, Phase::SettingUp) => {
            return Err(not_streaming(record, "is still being set up"))
        }
        (_, Phase::Paused) => return Err(not_streaming(record, "is paused")),
        (_, Phase::SwitchedOver) => return Err(not_streaming(record, "was switched over")),
        (Some(info), Phase::Streaming) => info,
    };
    let mut sources = Sessions::source(plane).await?;
    let mut clones = Sessions::clone(plane, info).await?;
    for triple in record.triples() {
        let source = sources.get(&triple.database).await?;
        let clone = clones.get(&triple.database).await?;
        let reading =
            crate::steps::verify::measure(source, clone, &triple.spec(&record.pipeline)).await?;
        if reading.apply_worker_pid == 0 || !reading.slot_active {
            return Err(not_streaming(
                record,
                &format!(
                    "is not streaming (subscription {}: apply worker {}, slot {} {})",
                    triple.subscription,
                    if reading.apply_worker_pid == 0 {
                        "absent"
                    } else {
                        "running"
                    },
                    triple.slot,
                    if reading.slot_active {
                        "active"
                    } else {
                        "inactive"
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// The tables the pipeline replicates, per database (its publications'
/// tables, clonesync's own queue left out).
async fn tables_in_scope<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
) -> Result<Vec<(String, Vec<TableName>)>> {
    let mut sources = Sessions::source(plane).await?;
    let mut out: std::collections::BTreeMap<String, Vec<TableName>> = Default::default();
    for triple in record.triples() {
        let source = sources.get(&triple.database).await?;
        let published = steps::verify_table::published(source, &triple.publication).await?;
        let entry = out.entry(triple.database.clone()).or_default();
        entry.extend(
            published
                .into_iter()
                .filter(|t| t.schema.as_str() != crate::pipeline::names::CAPTURE_SCHEMA),
        );
        entry.sort();
        entry.dedup();
    }
    Ok(out.into_iter().collect())
}

/// The plan over a registered pipeline's control plane.
pub async fn plan_pipeline<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    request: &VerifyRequest,
) -> Result<VerifyPlan> {
    request.options.check()?;
    check_streaming(plane, record).await?;
    let scoped = tables_in_scope(plane, record).await?;
    let mut items = Vec::new();
    let item = |database: &str, table: &TableName| VerifyItem {
        pipeline_id: record.pipeline.id.clone(),
        database: database.to_string(),
        table: table.clone(),
        options: request.options.clone(),
    };
    match &request.tables {
        None => {
            for (database, tables) in &scoped {
                items.extend(tables.iter().map(|t| item(database, t)));
            }
        }
        Some(asked) => {
            if asked.is_empty() {
                return Err(Error::invalid("tables lists no table"));
            }
            let mut sources = Sessions::source(plane).await?;
            for table in asked {
                let mut found = false;
                let mut exists = false;
                for (database, tables) in &scoped {
                    if tables.contains(table) {
                        found = true;
                        items.push(item(database, table));
                    } else {
                        let source = sources.get(database).await?;
                        exists |= steps::verify_table::exists(source, table).await?;
                    }
                }
                if !found {
                    return Err(if exists {
                        Error::VerifyTableOutOfScope {
                            table: table.to_string(),
                            pipeline: record.pipeline.id.to_string(),
                        }
                    } else {
                        Error::VerifyTableUnknown {
                            table: table.to_string(),
                        }
                    });
                }
            }
        }
    }
    Ok(VerifyPlan {
        pipeline_id: record.pipeline.id.clone(),
        items,
    })
}

/// Both sides of one database of the pipeline.
pub async fn sides<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    database: &str,
) -> Result<Sides> {
    let info = crate::workflow::registered::clone_info(
        record,
        "only a streaming pipeline's copy can be verified",
    )?;
    let mine: Vec<_> = record
        .triples()
        .into_iter()
        .filter(|t| t.database == database)
        .collect();
    if mine.is_empty() {
        return Err(Error::invalid(format!(
            "pipeline {} does not replicate database {database:?}",
            record.pipeline.id
        )));
    }
    let mut source = plane.source_endpoint().await?;
    source.dbname = database.to_string();
    let mut target = plane.clone_endpoint(info).await?;
    target.dbname = database.to_string();
    Ok(Sides {
        source: Login {
            endpoint: source,
            settings: plane.session(),
        },
        target: Login {
            endpoint: target,
            settings: plane.clone_session(),
        },
        slots: mine.iter().map(|t| t.slot.to_string()).collect(),
        subscriptions: mine.iter().map(|t| t.subscription.to_string()).collect(),
    })
}

/// One table of a registered pipeline.
pub async fn table_pipeline<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    item: &VerifyItem,
) -> Result<TableVerdict> {
    let sides = sides(plane, record, &item.database).await?;
    verify_table::run(&sides, &item.database, &item.table, &item.options).await
}

/// `verify-plan`.
pub async fn plan<C: Cloud>(cloud: &C, request: &VerifyRequest) -> Result<VerifyPlan> {
    let record = crate::workflow::registered::load(cloud, &request.pipeline_id).await?;
    let plane = cloud.clones().plane_of(&record);
    plan_pipeline(&plane, &record, request).await
}

/// `verify-table`.
pub async fn table<C: Cloud>(cloud: &C, item: &VerifyItem) -> Result<TableVerdict> {
    let record = crate::workflow::registered::load(cloud, &item.pipeline_id).await?;
    let plane = cloud.clones().plane_of(&record);
    table_pipeline(&plane, &record, item).await
}

/// `verify-report`: the summary (its metrics are
/// [`crate::monitor::emf::verification_lines`]).
pub fn summarize(results: &VerifyResults) -> Result<VerifySummary> {
    let name = |v: &TableVerdict| format!("{}: {}", v.database, v.table);
    let of = |verdict: Verdict| -> Vec<String> {
        results
            .results
            .iter()
            .filter(|v| v.verdict == verdict)
            .map(name)
            .collect()
    };
    let summary = VerifySummary {
        pipeline_id: results.pipeline_id.clone(),
        tables: results.results.len(),
        equal: of(Verdict::Equal).len(),
        differing: of(Verdict::Differs),
        unsettled: of(Verdict::Unsettled),
        all_equal: results.results.iter().all(|v| v.verdict == Verdict::Equal),
    };
    for verdict in results
        .results
        .iter()
        .filter(|v| v.verdict != Verdict::Equal)
    {
        tracing::warn!(pipeline = %summary.pipeline_id, database = %verdict.database, table = %verdict.table, verdict = verdict.verdict.as_str(), differing = verdict.differing_total, unsettled = verdict.unsettled_total, "table not equal");
    }
    if results.require_equal && !summary.all_equal {
        return Err(differs(&results.results));
    }
    Ok(summary)
}

/// `Verify.Differs`, naming each table that is not equal.
pub fn differs(results: &[TableVerdict]) -> Error {
    Error::VerifyDiffers {
        tables: results
            .iter()
            .filter(|v| v.verdict != Verdict::Equal)
            .map(|v| {
                format!(
                    "{}: {} {} ({} row(s) differ, {} unsettled)",
                    v.database,
                    v.table,
                    v.verdict.as_str(),
                    v.differing_total,
                    v.unsettled_total
                )
            })
            .collect(),
    }
}

/// The whole verification of a registered pipeline, one table after the
/// other (`clonesync verify`).
pub async fn verify_pipeline<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
    request: &VerifyRequest,
) -> Result<Vec<TableVerdict>> {
    let plan = plan_pipeline(plane, record, request).await?;
    let mut verdicts = Vec::new();
    for item in &plan.items {
        verdicts.push(table_pipeline(plane, record, item).await?);
    }
    Ok(verdicts)
}
