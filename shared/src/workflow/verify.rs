//! Verification of a registered pipeline's copy by content, while writes go
//! on: the plan (which tables, after checking the pipeline streams), one
//! table ([`crate::steps::verify_table`]), and the summary with its
//! metrics. `clonesync verify` runs the three here one after the other.
//!
//! The `verify` and `switchover` state machines keep no table list in their
//! state, which Step Functions limits to 256 KiB (row 15 of
//! `AWS-BEHAVIOURS.md`): `verify-plan` writes the plan's items to the runs
//! bucket ([`plan_to_store`]), a Distributed Map reads them there (its
//! child executions keep the per-table history out of the parent's 25,000
//! events), each `verify-table` writes its verdict next to them
//! ([`table_to_store`]), and `verify-report` reads every verdict back
//! ([`report_from_store`]). The summary in the state names at most
//! [`NAMES_IN_SUMMARY`] tables; the verdicts stay in the bucket until its
//! lifecycle rule expires them.

use crate::error::{Error, Result};
use crate::pg::TableName;
use crate::pipeline::{Phase, PipelineId, PipelineRecord};
use crate::ports::{Clones, Cloud, ControlPlane, RunStore};
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

/// Verdicts to sum up: every verdict of a stored run
/// ([`report_from_store`]), or any list of them.
#[derive(Debug, Clone)]
pub struct VerifyResults {
    pub pipeline_id: PipelineId,
    pub results: Vec<TableVerdict>,
    /// Fail with `Verify.Differs` unless every table is equal (the
    /// switchover's verification).
    pub require_equal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySummary {
    pub pipeline_id: PipelineId,
    pub tables: usize,
    pub equal: usize,
    /// `database: table` of the tables that differ, the first
    /// [`NAMES_IN_SUMMARY`] of them.
    pub differing: Vec<String>,
    /// How many differ, named or not.
    pub differing_total: usize,
    pub unsettled: Vec<String>,
    pub unsettled_total: usize,
    pub all_equal: bool,
    /// Where each table's whole verdict is (`s3://bucket/prefix`), for a
    /// verification run by the state machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<String>,
}

/// How many tables a summary (or `Verify.Differs`) names: enough to act on,
/// and a bounded share of the 256 KiB state (and of the error cause's
/// 32,768 characters) whatever the table count.
pub const NAMES_IN_SUMMARY: usize = 100;

impl VerifySummary {
    /// Its counts, as the verification metrics take them.
    pub fn counts(&self) -> crate::monitor::emf::VerificationCounts<'_> {
        crate::monitor::emf::VerificationCounts {
            pipeline_id: &self.pipeline_id,
            tables: self.tables,
            differing: self.differing_total,
            unsettled: self.unsettled_total,
        }
    }
}

/// `verify-plan`'s input in the state machines: the request, and the
/// execution it plans for (`$$.Execution.Id`), which names the run's
/// documents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    pub request: VerifyRequest,
    pub execution: String,
}

/// `verify-plan`'s output in the state machines: where the run's items and
/// verdicts are. Its size does not depend on the table count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredPlan {
    pub pipeline_id: PipelineId,
    pub tables: usize,
    pub bucket: String,
    /// The JSON array of [`VerifyItem`]s the Distributed Map reads.
    pub items_key: String,
    /// Each table's verdict is `<verdicts_prefix><index>.json`.
    pub verdicts_prefix: String,
}

/// One child of the Distributed Map: its item, its index in the items and
/// where its verdict goes (the Map's `ItemSelector`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapItem {
    pub item: VerifyItem,
    pub index: usize,
    pub verdicts_prefix: String,
}

/// `verify-report`'s input in the state machines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub pipeline_id: PipelineId,
    pub plan: StoredPlan,
    /// Fail with `Verify.Differs` unless every table is equal.
    #[serde(default)]
    pub require_equal: bool,
}

/// Where the documents live under the runs bucket: one prefix per
/// pipeline, state machine and execution name (an execution ARN is
/// `arn:<partition>:states:<region>:<account>:execution:<machine>:<name>`).
const RUNS_PREFIX: &str = "verify/";

/// Where `verify-plan` writes the tables of one execution: the object
/// the Distributed Map's `ItemReader` reads.
pub fn items_key(pipeline: &PipelineId, execution: &str) -> Result<String> {
    Ok(format!("{}items.json", run_prefix(pipeline, execution)?))
}

fn run_prefix(pipeline: &PipelineId, execution: &str) -> Result<String> {
    let parts: Vec<&str> = execution.split(':').collect();
    match parts.as_slice() {
        [arn, _, "states", _, _, "execution", machine, name]
            if *arn == "arn" && !machine.is_empty() && !name.is_empty() =>
        {
            Ok(format!("{RUNS_PREFIX}{pipeline}/{machine}/{name}/"))
        }
        _ => Err(Error::invalid(format!(
            "execution {execution:?} is not a Step Functions execution ARN"
        ))),
    }
}

fn verdict_key(prefix: &str, index: usize) -> String {
    format!("{prefix}{index}.json")
}

/// A prefix this module made for `pipeline`, so an item cannot make a
/// function write outside its pipeline's runs.
fn check_verdicts_prefix(pipeline: &PipelineId, prefix: &str) -> Result<()> {
    let ours = format!("{RUNS_PREFIX}{pipeline}/");
    if prefix.starts_with(&ours) && prefix.ends_with("/verdicts/") && !prefix.contains("..") {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "verdicts_prefix {prefix:?} is not a verification run of pipeline {pipeline}"
        )))
    }
}

fn encoded<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|cause| Error::OutputUnencodable {
        what: std::any::type_name::<T>().to_string(),
        cause,
    })
}

/// `verify-plan` in the state machines: the plan, written to the runs
/// bucket (a put under the execution's own prefix: a retried plan writes
/// the same document again).
pub async fn plan_to_store<C: Cloud>(cloud: &C, input: &PlanRequest) -> Result<StoredPlan> {
    let prefix = run_prefix(&input.request.pipeline_id, &input.execution)?;
    let items_key = items_key(&input.request.pipeline_id, &input.execution)?;
    let runs = cloud.runs()?;
    let plan = plan(cloud, &input.request).await?;
    runs.put(&items_key, encoded(&plan.items)?).await?;
    Ok(StoredPlan {
        pipeline_id: plan.pipeline_id,
        tables: plan.items.len(),
        bucket: runs.bucket().to_string(),
        items_key,
        verdicts_prefix: format!("{prefix}verdicts/"),
    })
}

/// `verify-table` in the state machines: the table's verdict, also written
/// to the runs bucket (a put: a retried table overwrites its own verdict).
pub async fn table_to_store<C: Cloud>(cloud: &C, input: &MapItem) -> Result<TableVerdict> {
    check_verdicts_prefix(&input.item.pipeline_id, &input.verdicts_prefix)?;
    let runs = cloud.runs()?;
    let verdict = table(cloud, &input.item).await?;
    runs.put(
        &verdict_key(&input.verdicts_prefix, input.index),
        encoded(&verdict)?,
    )
    .await?;
    Ok(verdict)
}

/// How many verdicts `verify-report` reads at once.
const READS_AT_ONCE: usize = 16;

/// Every verdict of a stored plan, in the plan's order; `Verify.Incomplete`
/// when one is missing or is not a verdict.
pub async fn stored_verdicts<R: RunStore>(
    runs: &R,
    plan: &StoredPlan,
) -> Result<Vec<TableVerdict>> {
    use futures_util::{StreamExt, TryStreamExt};
    futures_util::stream::iter(0..plan.tables)
        .map(|index| async move {
            let key = verdict_key(&plan.verdicts_prefix, index);
            let body = runs
                .get(&key)
                .await?
                .ok_or_else(|| Error::VerifyIncomplete {
                    detail: format!(
                        "table {index} of {} has no verdict at s3://{}/{key}",
                        plan.tables, plan.bucket
                    ),
                })?;
            serde_json::from_slice::<TableVerdict>(&body).map_err(|e| Error::VerifyIncomplete {
                detail: format!("s3://{}/{key} is not a verdict: {e}", plan.bucket),
            })
        })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await
}

/// `verify-report` in the state machines: every verdict of the plan read
/// back (`Verify.Incomplete` when one is missing), then summed up.
pub async fn report_from_store<C: Cloud>(
    cloud: &C,
    input: &ReportRequest,
) -> Result<VerifySummary> {
    let plan = &input.plan;
    if plan.pipeline_id != input.pipeline_id {
        return Err(Error::invalid(format!(
            "the plan is of pipeline {}, not {}",
            plan.pipeline_id, input.pipeline_id
        )));
    }
    check_verdicts_prefix(&input.pipeline_id, &plan.verdicts_prefix)?;
    let runs = cloud.runs()?;
    if runs.bucket() != plan.bucket {
        return Err(Error::invalid(format!(
            "the plan's bucket {:?} is not the runs bucket {:?}",
            plan.bucket,
            runs.bucket()
        )));
    }
    let results = stored_verdicts(&runs, plan).await?;
    let mut summary = summarize(&VerifyResults {
        pipeline_id: input.pipeline_id.clone(),
        results,
        require_equal: input.require_equal,
    })?;
    summary.verdicts = Some(format!("s3://{}/{}", plan.bucket, plan.verdicts_prefix));
    Ok(summary)
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
    let count = |verdict: Verdict| {
        results
            .results
            .iter()
            .filter(|v| v.verdict == verdict)
            .count()
    };
    let named = |verdict: Verdict| -> Vec<String> {
        results
            .results
            .iter()
            .filter(|v| v.verdict == verdict)
            .take(NAMES_IN_SUMMARY)
            .map(name)
            .collect()
    };
    let summary = VerifySummary {
        pipeline_id: results.pipeline_id.clone(),
        tables: results.results.len(),
        equal: count(Verdict::Equal),
        differing: named(Verdict::Differs),
        differing_total: count(Verdict::Differs),
        unsettled: named(Verdict::Unsettled),
        unsettled_total: count(Verdict::Unsettled),
        all_equal: results.results.iter().all(|v| v.verdict == Verdict::Equal),
        verdicts: None,
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

/// `Verify.Differs`, naming each table that is not equal (the first
/// [`NAMES_IN_SUMMARY`], then how many more).
pub fn differs(results: &[TableVerdict]) -> Error {
    let not_equal: Vec<&TableVerdict> = results
        .iter()
        .filter(|v| v.verdict != Verdict::Equal)
        .collect();
    let more = not_equal.len().saturating_sub(NAMES_IN_SUMMARY);
    let mut tables: Vec<String> = not_equal
        .iter()
        .take(NAMES_IN_SUMMARY)
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
        .collect();
    if more > 0 {
        tables.push(format!("and {more} more table(s) not equal"));
    }
    Error::VerifyDiffers { tables }
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

/// The tables in the pipeline's scope a verification cannot cover because
/// PostgreSQL does not replicate them (unlogged), as `database: table`.
pub async fn not_replicated_pipeline<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
) -> Result<Vec<String>> {
    let mut sources = Sessions::source(plane).await?;
    let mut named = Vec::new();
    for database in crate::pipeline::triples::databases_of(&record.triples()) {
        let scope = record.database_scope(database)?;
        let source = sources.get(database).await?;
        named.extend(
            crate::steps::checks::not_replicated(source, &scope)
                .await?
                .into_iter()
                .map(|table| format!("{database}: {table}")),
        );
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> PipelineId {
        "orders_dev".parse().expect("a pipeline id")
    }

    #[test]
    fn a_run_is_named_by_its_execution_arn_and_nothing_else() {
        assert_eq!(
            run_prefix(
                &pipeline(),
                "arn:aws:states:eu-west-1:444455556666:execution:clonesync-verify:orders-20261207"
            )
            .unwrap(),
            "verify/orders_dev/clonesync-verify/orders-20261207/"
        );
        for bad in [
            "",
            "orders-20261207",
            "arn:aws:states:eu-west-1:444455556666:stateMachine:clonesync-verify",
            "arn:aws:states:eu-west-1:444455556666:execution:clonesync-verify:",
            "arn:aws:lambda:eu-west-1:444455556666:execution:m:n",
            "arn:aws:states:eu-west-1:444455556666:execution:m:n:extra",
        ] {
            let err = run_prefix(&pipeline(), bad).unwrap_err();
            assert_eq!(err.name(), "Input.Invalid", "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_verdict_goes_only_under_its_own_pipelines_runs() {
        check_verdicts_prefix(&pipeline(), "verify/orders_dev/m/n/verdicts/").unwrap();
        for bad in [
            "verify/other/m/n/verdicts/",
            "verify/orders_dev_2/m/n/verdicts/",
            "verify/orders_dev/../other/verdicts/",
            "verify/orders_dev/m/n/",
            "elsewhere/orders_dev/m/n/verdicts/",
        ] {
            let err = check_verdicts_prefix(&pipeline(), bad).unwrap_err();
            assert_eq!(err.name(), "Input.Invalid", "{bad:?}: {err}");
        }
    }

    #[test]
    fn verify_differs_names_at_most_a_hundred_tables_and_counts_the_rest() {
        let verdict = |i: usize| TableVerdict {
            database: "app".into(),
            table: format!("t_{i}"),
            verdict: Verdict::Differs,
            key: vec!["id".into()],
            source_rows: 1,
            chunks: 1,
            rechecked: 0,
            differing_rows: Vec::new(),
            differing_total: 1,
            unsettled_keys: Vec::new(),
            unsettled_total: 0,
            detail: None,
            took_ms: 0,
        };
        let results: Vec<TableVerdict> = (0..250).map(verdict).collect();
        let Error::VerifyDiffers { tables } = differs(&results) else {
            panic!("not Verify.Differs");
        };
        assert_eq!(tables.len(), NAMES_IN_SUMMARY + 1);
        assert_eq!(tables[NAMES_IN_SUMMARY], "and 150 more table(s) not equal");
        let summary = summarize(&VerifyResults {
            pipeline_id: pipeline(),
            results,
            require_equal: false,
        })
        .unwrap();
        assert_eq!(summary.differing.len(), NAMES_IN_SUMMARY);
        assert_eq!((summary.differing_total, summary.tables), (250, 250));
    }
}
