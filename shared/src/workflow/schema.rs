//! Schema changes over registered pipelines: refresh the subscriptions so
//! new tables are copied, report what the targets could not apply, and the
//! drift report. Each works on one pipeline (`pipeline_id`) or on every
//! streaming one (the scheduled run); one pipeline that cannot be read is
//! reported and the others go on.

use crate::error::{Error, Result};
use crate::pg::ddl::AppliedSummary;
use crate::pipeline::{triples, Phase, PipelineId, PipelineRecord};
use crate::ports::{Clones, Cloud, ControlPlane, Coordination};
use crate::steps;
use crate::steps::drift::Difference;
use crate::steps::refresh::Refreshed;
use crate::workflow::{registered, Sessions};
use serde::{Deserialize, Serialize};

/// The input of `refresh-tables` and `drift-report`: one pipeline, or
/// (no id) every streaming pipeline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineChoice {
    #[serde(default)]
    pub pipeline_id: Option<PipelineId>,
}

/// One pipeline's refresh: per triple, and the schema changes its target
/// could not apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineRefresh {
    pub pipeline: String,
    pub triples: Vec<(String, Refreshed)>,
    /// Per database of the target.
    pub schema_changes: Vec<(String, AppliedSummary)>,
    /// The error that stopped this pipeline's refresh (name and message).
    pub error: Option<(String, String)>,
}

impl PipelineRefresh {
    pub fn pending(&self) -> usize {
        self.schema_changes
            .iter()
            .map(|(_, s)| s.pending_total.max(s.pending.len() as i64) as usize)
            .sum()
    }
}

/// One pipeline's drift report, per database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDrift {
    pub pipeline: String,
    pub databases: Vec<(String, Vec<Difference>)>,
    pub error: Option<(String, String)>,
}

impl PipelineDrift {
    pub fn differences(&self) -> usize {
        self.databases.iter().map(|(_, d)| d.len()).sum()
    }
}

/// The publications of a database's triples: its apply groups' when it
/// has more than one.
fn group_publications(all: &[triples::Triple], database: &str) -> Vec<crate::pg::PgName> {
    all.iter()
        .filter(|t| t.database == database)
        .map(|t| t.publication.clone())
        .collect()
}

/// What refresh and drift need the clone for, when there is none.
const NEEDS_A_COPY: &str = "only a set-up pipeline has a copy to refresh or compare";

/// Sessions on the source and on the pipeline's clone (which it must have).
async fn both_sides<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
) -> Result<(Sessions, Sessions)> {
    let info = registered::clone_info(record, NEEDS_A_COPY)?;
    Ok((
        Sessions::source(plane).await?,
        Sessions::clone(plane, info).await?,
    ))
}

/// Refresh every subscription of one registered pipeline (a paused one is
/// reported as skipped) and read what its target did with schema changes.
pub async fn refresh_pipeline<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
) -> Result<PipelineRefresh> {
    let (mut sources, mut clones) = both_sides(plane, record).await?;
    let mut report = PipelineRefresh {
        pipeline: record.pipeline.id.to_string(),
        ..PipelineRefresh::default()
    };
    let all = record.triples();
    for database in triples::databases_of(&all) {
        let groups = group_publications(&all, database);
        if groups.len() > 1 {
            let source = sources.get(database).await?;
            let target = clones.get(database).await?;
            for (table, group) in
                steps::refresh::join_groups(source, target, &record.pipeline.scope, &groups).await?
            {
                tracing::info!(pipeline = %record.pipeline.id, %table, publication = %group, "a table made after setup joins the apply group with the fewest tables");
            }
        }
    }
    for triple in &all {
        let source = sources.get(&triple.database).await?;
        let target = clones.get(&triple.database).await?;
        let done =
            crate::steps::refresh::run(source, target, &triple.spec(&record.pipeline)).await?;
        report.triples.push((triple.database.clone(), done));
    }
    report.schema_changes = read_schema_changes(&mut clones, record).await?;
    Ok(report)
}

/// What each database of the copy did with the schema changes it received
/// (applied, out of scope, pending): read alone, so a refresh that fails
/// still lets the pending ones be told.
pub async fn schema_changes_pipeline<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
) -> Result<Vec<(String, AppliedSummary)>> {
    let info = registered::clone_info(record, NEEDS_A_COPY)?;
    let mut clones = Sessions::clone(plane, info).await?;
    read_schema_changes(&mut clones, record).await
}

async fn read_schema_changes(
    clones: &mut Sessions,
    record: &PipelineRecord,
) -> Result<Vec<(String, AppliedSummary)>> {
    let mut out = Vec::new();
    for database in triples::databases_of(&record.triples()) {
        let target = clones.get(database).await?;
        out.push((
            database.to_string(),
            steps::refresh::schema_changes(target).await?,
        ));
    }
    Ok(out)
}

/// Compare the shape of every table in scope, per database.
pub async fn drift_pipeline<P: ControlPlane>(
    plane: &P,
    record: &PipelineRecord,
) -> Result<PipelineDrift> {
    let (mut sources, mut clones) = both_sides(plane, record).await?;
    let mut report = PipelineDrift {
        pipeline: record.pipeline.id.to_string(),
        ..PipelineDrift::default()
    };
    let all = record.triples();
    for database in triples::databases_of(&all) {
        let scope = record.database_scope(database)?;
        let source = sources.get(database).await?;
        let target = clones.get(database).await?;
        let mut differences = crate::steps::drift::run(source, target, &scope).await?;
        // With groups, a table in no group's list is outside every scope
        // above, and never replicated: named, whatever its shapes.
        let groups = group_publications(&all, database);
        if groups.len() > 1 {
            for table in
                steps::checks::not_published(source, &record.pipeline.scope, &groups).await?
            {
                differences.push(steps::drift::Difference {
                    table: table.to_string(),
                    what: "replication".into(),
                    source: Some("in the pipeline's scope".into()),
                    target: Some("in no apply group's publication: never received (a refresh gives it a group)".into()),
                });
            }
        }
        report.databases.push((database.to_string(), differences));
    }
    Ok(report)
}

/// The registered pipelines a choice names: the one asked for (which must
/// exist and have a clone), or every one that streams.
async fn chosen<C: Cloud>(cloud: &C, choice: &PipelineChoice) -> Result<Vec<PipelineRecord>> {
    let coordination = cloud.coordination();
    match &choice.pipeline_id {
        Some(id) => {
            let record = registered::load(cloud, id).await?;
            if !record.is_monitored() {
                return Err(registered::no_clone_yet(&record, NEEDS_A_COPY));
            }
            Ok(vec![record])
        }
        None => {
            let (records, _) = coordination.scan_pipelines().await?;
            Ok(records
                .into_iter()
                .filter(|r| r.is_monitored() && r.phase == Phase::Streaming)
                .collect())
        }
    }
}

fn error_pair(error: &Error) -> Option<(String, String)> {
    Some((error.name().to_string(), error.to_string()))
}

/// `refresh-tables`: the chosen pipelines, one after the other.
pub async fn refresh<C: Cloud>(cloud: &C, choice: &PipelineChoice) -> Result<Vec<PipelineRefresh>> {
    let mut reports = Vec::new();
    for record in chosen(cloud, choice).await? {
        let plane = cloud.clones().plane_of(&record);
        match refresh_pipeline(&plane, &record).await {
            Ok(report) => reports.push(report),
            // Asked for one: its error is the answer.
            Err(e) if choice.pipeline_id.is_some() => return Err(e),
            Err(e) => {
                tracing::error!(pipeline = %record.pipeline.id, kind = e.name(), error = %e, "could not refresh a pipeline");
                reports.push(PipelineRefresh {
                    pipeline: record.pipeline.id.to_string(),
                    error: error_pair(&e),
                    // The pending changes, still, where the copy answers.
                    schema_changes: schema_changes_pipeline(&plane, &record)
                        .await
                        .unwrap_or_default(),
                    ..PipelineRefresh::default()
                });
            }
        }
    }
    Ok(reports)
}

/// `drift-report`: the chosen pipelines, one after the other.
pub async fn drift<C: Cloud>(cloud: &C, choice: &PipelineChoice) -> Result<Vec<PipelineDrift>> {
    let mut reports = Vec::new();
    for record in chosen(cloud, choice).await? {
        let plane = cloud.clones().plane_of(&record);
        match drift_pipeline(&plane, &record).await {
            Ok(report) => reports.push(report),
            Err(e) if choice.pipeline_id.is_some() => return Err(e),
            Err(e) => reports.push(PipelineDrift {
                pipeline: record.pipeline.id.to_string(),
                error: error_pair(&e),
                ..PipelineDrift::default()
            }),
        }
    }
    Ok(reports)
}
