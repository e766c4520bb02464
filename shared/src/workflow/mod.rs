//! What each state of `statemachine/setup.asl.json` runs: one function per
//! Lambda task, taking the typed state and returning the piece the ASL
//! puts at its `ResultPath` (JSON is [`crate::handlers`]' business). The
//! functions are generic over the ports ([`crate::ports`]), so the same
//! code runs against AWS ([`crate::aws::AwsCloud`]) and against local
//! servers.
//!
//! Idempotency is the steps' own (see each `steps::*` module): every task
//! may be retried or run again on the same state.

pub mod events;
pub mod lifecycle;
pub(crate) mod registered;
pub mod schema;
pub mod state;
pub mod switchover;
pub mod verify;
pub mod waits;

use crate::error::{Error, Result};
use crate::pg::{connect, Endpoint, SessionSettings};
use crate::pipeline::{CloneInfo, Expected, Phase, Share, UndoPlan};
use crate::ports::{Clones, Cloud, ControlPlane, Coordination, ResourceShare};
use crate::steps;
use serde::{Deserialize, Serialize};
pub use state::{CreatedState, PreparedTriple, SourceCreated, State};
use std::time::Duration;
use tokio_postgres::Client;

/// How long `verify` waits, for all the triples together, for each apply
/// worker and slot to be active.
pub const VERIFY_WAIT: Duration = Duration::from_secs(60);

/// The control plane for the pipeline of `state`.
pub fn plane<'a, C: Cloud>(cloud: &'a C, state: &State) -> <C::Clones as Clones>::Plane<'a> {
    cloud
        .clones()
        .plane_for(&state.pipeline, &state.source, &state.clone)
}

async fn open<P: ControlPlane>(plane: &P, endpoint: &Endpoint) -> Result<Client> {
    connect(endpoint, &plane.session()).await
}

pub(crate) async fn source<P: ControlPlane>(plane: &P) -> Result<Client> {
    open(plane, &plane.source_endpoint().await?).await
}

/// Sessions on the databases of one server (the source, or the clone),
/// each opened when first needed and kept for the task: a pipeline's
/// triples live in several databases, and each step reaches each of them.
pub(crate) struct Sessions {
    endpoint: Endpoint,
    /// On the clone, the login as of the source secret's previous version
    /// (after a rotation), which [`steps::follow_rotation`] falls back to.
    previous: Option<Endpoint>,
    settings: SessionSettings,
    open: Vec<(String, Client)>,
}

impl Sessions {
    /// Sessions on the source's databases.
    pub(crate) async fn source<P: ControlPlane>(plane: &P) -> Result<Sessions> {
        Ok(Sessions {
            endpoint: plane.source_endpoint().await?,
            previous: None,
            settings: plane.session(),
            open: Vec::new(),
        })
    }

    /// Sessions on the clone's databases.
    pub(crate) async fn clone<P: ControlPlane>(plane: &P, info: &CloneInfo) -> Result<Sessions> {
        Ok(Sessions {
            endpoint: plane.clone_endpoint(info).await?,
            previous: plane.previous_clone_endpoint(info).await?,
            settings: plane.clone_session(),
            open: Vec::new(),
        })
    }

    /// The login to `database` (the same login, another database).
    pub(crate) fn endpoint_of(&self, database: &str) -> Endpoint {
        Endpoint {
            dbname: database.to_string(),
            ..self.endpoint.clone()
        }
    }

    /// A session on `database`, opened now if it is not yet.
    pub(crate) async fn get(&mut self, database: &str) -> Result<&mut Client> {
        let index = match self.open.iter().position(|(d, _)| d == database) {
            Some(index) => index,
            None => {
                let previous = self.previous.as_ref().map(|p| Endpoint {
                    dbname: database.to_string(),
                    ..p.clone()
                });
                let client = steps::follow_rotation::connect_clone(
                    &self.endpoint_of(database),
                    previous.as_ref(),
                    &self.settings,
                )
                .await?;
                self.open.push((database.to_string(), client));
                self.open.len() - 1
            }
        };
        Ok(&mut self.open[index].1)
    }

    /// A session already opened on `database`.
    pub(crate) fn opened(&self, database: &str) -> Option<&Client> {
        self.open
            .iter()
            .find(|(d, _)| d == database)
            .map(|(_, c)| c)
    }
}

pub async fn preflight<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::preflight::PreflightReport> {
    let mut sources = Sessions::source(plane).await?;
    let login = state.source.login_database().to_string();
    let (databases, mut failures) = {
        let client = sources.get(&login).await?;
        steps::preflight::databases(client, &state.source, &state.pipeline.scope).await?
    };
    let mut usable = Vec::new();
    for (database, scope) in databases {
        match sources.get(&database).await {
            Ok(_) => usable.push((database, scope)),
            Err(e) => failures.push(crate::error::PreflightFailure {
                check: "database".into(),
                detail: format!("cannot connect to database {database:?}: {e}"),
                hint: "check the login's CONNECT privilege and pg_hba rules for that database"
                    .into(),
            }),
        }
    }
    let sessions: Vec<(String, crate::pipeline::Scope, &Client)> = usable
        .iter()
        .filter_map(|(d, scope)| sources.opened(d).map(|c| (d.clone(), scope.clone(), c)))
        .collect();
    let (triples, planned) = steps::preflight::plan(
        &sessions,
        &state.pipeline,
        state.source.several_databases(),
        state.apply_groups,
    )
    .await?;
    failures.extend(planned);
    let checked: Vec<(String, &Client)> = match sessions.is_empty() {
        // Still check the server, through the login's database.
        true => sources
            .opened(&login)
            .map(|c| vec![(login.clone(), c)])
            .unwrap_or_default(),
        false => sessions.iter().map(|(d, _, c)| (d.clone(), *c)).collect(),
    };
    steps::preflight::run_triples(
        plane,
        &checked,
        None,
        &state.pipeline,
        &triples,
        &usable,
        failures,
        plane.extra_senders(),
        state.waits.slot_idle_window(),
    )
    .await
}

/// [`preflight`], then what only the registry knows: a pipeline already
/// registered keeps the triples it has (setup run again with other
/// databases or groups would make a slot after the clone, fail the range
/// check and have its cleanup drop the live slots: changing them is a
/// re-seed), and no triple may take a slot another pipeline lists.
pub async fn preflight_registered<C: Cloud>(
    cloud: &C,
    state: &State,
) -> Result<steps::preflight::PreflightReport> {
    let plane = plane(cloud, state);
    // Slot names do not depend on how tables fall into groups, so the
    // registry is checked even when the other checks fail: every failure
    // comes back at once.
    let planned: std::collections::BTreeSet<String> = named_triples(&plane, state)
        .await?
        .iter()
        .map(|t| t.slot.to_string())
        .collect();
    let (records, _) = cloud.coordination().scan_pipelines().await?;
    let mut registry = Vec::new();
    // A pipeline registered here keeps its setup mark: a setup run again
    // (a new request, a new mark) judges the source's objects by it, and
    // RecordInventory hands it on to the steps that follow.
    let mut state = std::borrow::Cow::Borrowed(state);
    if let Some(record) = records.iter().find(|r| r.pipeline.id == state.pipeline.id) {
        if record.source.cluster_arn != state.source.cluster_arn {
            registry.push(crate::error::PreflightFailure {
                check: "pipeline_id".into(),
                detail: format!(
                    "pipeline {} is registered for source cluster {}; this request names {}",
                    record.pipeline.id, record.source.cluster_arn, state.source.cluster_arn
                ),
                hint: "choose another pipeline id, or tear the registered pipeline down first"
                    .into(),
            });
        }
        state.to_mut().pipeline.setup_mark = record.pipeline.setup_mark.clone();
    }
    let state = state.as_ref();
    for record in &records {
        let slots: std::collections::BTreeSet<String> = record
            .triples()
            .iter()
            .map(|t| t.slot.to_string())
            .collect();
        if record.pipeline.id == state.pipeline.id {
            if slots != planned {
                registry.push(crate::error::PreflightFailure {
                    check: "triples".into(),
                    detail: format!(
                        "pipeline {} is registered ({}) with slots {:?}; this request plans {:?}",
                        record.pipeline.id,
                        record.phase.as_str(),
                        slots,
                        planned
                    ),
                    hint: "run it with \"reseed\": true to change its databases or apply groups, or tear it down first".into(),
                });
            }
        } else if let Some(taken) = slots.intersection(&planned).next() {
            registry.push(crate::error::PreflightFailure {
                check: "slot_name".into(),
                detail: format!("slot {taken:?} belongs to pipeline {}", record.pipeline.id),
                hint: "choose another pipeline.slot base or pipeline id".into(),
            });
        }
    }
    match Box::pin(preflight(&plane, state)).await {
        Ok(report) if registry.is_empty() => Ok(report),
        Ok(_) => Err(Error::PreflightFailed { failures: registry }),
        Err(Error::PreflightFailed { mut failures }) => {
            failures.extend(registry);
            Err(Error::PreflightFailed { failures })
        }
        Err(e) => Err(e),
    }
}

/// Whose each of the pipeline's triples is on the source, by its
/// publication's mark (with the mark): a record whose setup made nothing
/// owns nothing, and what another setup of the same id made is theirs.
/// Reads only.
pub async fn claims<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<
    Vec<(
        crate::pipeline::Triple,
        crate::pipeline::Claim,
        Option<String>,
    )>,
> {
    let mut sources = Sessions::source(plane).await?;
    let mut claims = Vec::new();
    for triple in state.triples() {
        let source = sources.get(&triple.database).await?;
        let (claim, mark) = steps::checks::claim(source, &triple.spec(&state.pipeline)).await?;
        claims.push((triple, claim, mark));
    }
    Ok(claims)
}

/// The names of every triple the request of `state` can have (each
/// database it lists, or all for `"all"`; every group), without planning
/// the groups' tables: what a teardown needs when a setup died before
/// preflight recorded its plan. Reads only.
pub async fn named_triples<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<Vec<crate::pipeline::Triple>> {
    let mut sources = Sessions::source(plane).await?;
    let login = sources.get(state.source.login_database()).await?;
    let (databases, _) =
        steps::preflight::databases(login, &state.source, &state.pipeline.scope).await?;
    let mut triples = Vec::new();
    for (database, scope) in databases {
        for group in 1..=state.apply_groups.max(1) {
            let (publication, slot, subscription) = crate::pipeline::triples::triple_names(
                &state.pipeline,
                &database,
                state.source.several_databases(),
                state.apply_groups,
                group,
            )?;
            triples.push(crate::pipeline::Triple {
                database: database.clone(),
                group,
                publication,
                slot,
                subscription,
                scope: scope.clone(),
            });
        }
    }
    Ok(triples)
}

/// Every triple's publication and slot, in order. A triple that fails
/// undoes what this call made for the triples before it (their slots and
/// publications), so a failed preparation leaves nothing on the source.
pub async fn prepare_source<P: ControlPlane>(plane: &P, state: &State) -> Result<SourceCreated> {
    let mut sources = Sessions::source(plane).await?;
    let mut done: Vec<(PreparedTriple, steps::prepare_source::MadeNow)> = Vec::new();
    for triple in state.triples() {
        let spec = triple.spec(&state.pipeline);
        let result = match sources.get(&triple.database).await {
            Ok(client) => steps::prepare_source::prepare(client, &spec).await,
            Err(e) => Err(e),
        };
        match result {
            Ok((prepared, made_now)) => done.push((
                PreparedTriple {
                    database: triple.database.clone(),
                    slot: triple.slot.to_string(),
                    consistent_lsn: prepared.consistent_lsn,
                    publication_created: prepared.publication_created,
                },
                made_now,
            )),
            Err(error) => {
                for (prepared, made_now) in &done {
                    undo_prepared(&mut sources, state, prepared, *made_now).await;
                }
                return Err(error);
            }
        }
    }
    let slot_consistent_lsn = done
        .iter()
        .map(|(t, _)| t.consistent_lsn)
        .max()
        .ok_or_else(|| Error::invalid("the pipeline has no triple to prepare"))?;
    Ok(SourceCreated {
        publication: done.iter().any(|(t, _)| t.publication_created),
        slot: true,
        slot_consistent_lsn,
        triples: done.into_iter().map(|(t, _)| t).collect(),
    })
}

/// Drop what `prepare_source` made for one triple in this call
/// ([`steps::cleanup::undo_made_now`] decides what).
async fn undo_prepared(
    sources: &mut Sessions,
    state: &State,
    made: &PreparedTriple,
    made_now: steps::prepare_source::MadeNow,
) {
    let Some(triple) = state
        .triples()
        .into_iter()
        .find(|t| t.slot.as_str() == made.slot)
    else {
        return;
    };
    let Ok(client) = sources.get(&made.database).await else {
        tracing::error!(slot = %made.slot, "could not reach the source to undo a prepared triple");
        return;
    };
    steps::cleanup::undo_made_now(client, &triple.spec(&state.pipeline), made_now).await;
}

pub async fn share_cluster<C: Cloud>(cloud: &C, state: &State) -> Result<Share> {
    cloud
        .share()
        .share_cluster(
            state.pipeline.id.as_str(),
            &state.pipeline.setup_mark,
            &state.source.cluster_arn,
        )
        .await
}

pub async fn create_clone<P: ControlPlane>(plane: &P, state: &State) -> Result<CloneInfo> {
    steps::clone::run(plane, &state.pipeline).await
}

/// The one clone LSN, range-checked against every triple's slot.
pub async fn clone_lsn<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::clone_lsn::CloneLsn> {
    let info = state.clone_info()?;
    let mut sources = Sessions::source(plane).await?;
    let mut clones = Sessions::clone(plane, info).await?;
    let created = state.created.source.as_ref();
    let mut merged: Option<steps::clone_lsn::CloneLsn> = None;
    for triple in state.triples() {
        let consistent = created
            .and_then(|c| c.triples.iter().find(|t| t.slot == triple.slot.as_str()))
            .map(|t| t.consistent_lsn)
            .map_or_else(|| state.slot_consistent_lsn(), Ok)?;
        let source = sources.get(&triple.database).await?;
        let target = clones.get(&triple.database).await?;
        let reading = steps::clone_lsn::run(
            plane,
            source,
            target,
            &triple.spec(&state.pipeline),
            info,
            consistent,
        )
        .await?;
        merged = Some(match merged {
            None => reading,
            Some(m) => steps::clone_lsn::CloneLsn {
                clone_lsn: m.clone_lsn,
                slot_consistent_lsn: m.slot_consistent_lsn.max(reading.slot_consistent_lsn),
                source_flush_lsn: m.source_flush_lsn.max(reading.source_flush_lsn),
                already_attached: m.already_attached && reading.already_attached,
            },
        });
    }
    merged.ok_or_else(|| Error::invalid("the pipeline has no triple"))
}

/// What the clone inherited, dropped in every database of the pipeline.
pub async fn clean_inherited<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<steps::clean_inherited::Cleaned> {
    let mut clones = Sessions::clone(plane, state.clone_info()?).await?;
    let triples = state.triples();
    let mut cleaned = steps::clean_inherited::Cleaned::default();
    for database in crate::pipeline::triples::databases_of(&triples) {
        let specs: Vec<_> = triples
            .iter()
            .filter(|t| t.database == database)
            .map(|t| t.spec(&state.pipeline))
            .collect();
        let target = clones.get(database).await?;
        let done = steps::clean_inherited::run_for(target, &specs).await?;
        cleaned.slots_dropped.extend(done.slots_dropped);
        cleaned
            .subscriptions_dropped
            .extend(done.subscriptions_dropped);
        cleaned.publication_dropped |= done.publication_dropped;
        cleaned.capture_disabled |= done.capture_disabled;
    }
    Ok(cleaned)
}

/// Every triple's subscription, each in its database on the clone. A
/// triple that fails drops the subscriptions this call made before it.
pub async fn create_subscription<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<Vec<steps::create_subscription::SubscriptionCreated>> {
    let mut clones = Sessions::clone(plane, state.clone_info()?).await?;
    // The subscription's connection string holds the source login; it is
    // built here and passed as a bind parameter, never logged.
    // Each is marked with the secret version it holds, so the lag monitor
    // can tell when a rotation needs it re-applied.
    let sslmode = plane.session().tls.subscription_sslmode();
    let login = plane.source_login().await?;
    check_clone_limits(&mut clones, state).await?;
    let mut made: Vec<(String, String)> = Vec::new();
    let mut created = Vec::new();
    for triple in state.triples() {
        let source = Endpoint {
            dbname: triple.database.clone(),
            ..login.endpoint.clone()
        };
        let result = match clones.get(&triple.database).await {
            Ok(target) => {
                let conninfo = source.conninfo_with_sslmode(sslmode);
                match steps::create_subscription::run(
                    target,
                    &triple.spec(&state.pipeline),
                    &conninfo,
                )
                .await
                {
                    Ok(created) => steps::follow_rotation::reapply_connection(
                        target,
                        &triple.subscription,
                        &source,
                        sslmode,
                        &login.version,
                    )
                    .await
                    .map(|_| created),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(subscription) => {
                if subscription.created_now {
                    made.push((triple.database.clone(), triple.subscription.to_string()));
                }
                created.push(subscription);
            }
            Err(error) => {
                for (database, name) in &made {
                    if let Ok(target) = clones.get(database).await {
                        if let Err(e) = steps::cleanup::drop_subscription(target, name).await {
                            tracing::error!(subscription = %name, error = %e, "could not drop the subscription made by this failed call");
                        }
                    }
                }
                return Err(error);
            }
        }
    }
    Ok(created)
}

/// Before any subscription is made: the clone has room for those still to
/// be made. On Aurora its limits come from its own parameter group (the
/// target account's default without `clone.db_cluster_parameter_group`),
/// not from the source's that preflight read.
async fn check_clone_limits(clones: &mut Sessions, state: &State) -> Result<()> {
    let mut missing = 0;
    let mut any_database = None;
    for triple in state.triples() {
        let target = clones.get(&triple.database).await?;
        if !steps::create_subscription::exists(target, &triple.spec(&state.pipeline)).await? {
            missing += 1;
        }
        any_database.get_or_insert(triple.database.clone());
    }
    let Some(database) = any_database.filter(|_| missing > 0) else {
        return Ok(());
    };
    let clone_id = state.clone_info()?.clone_id.clone();
    steps::create_subscription::check_room(clones.get(&database).await?, &clone_id, missing).await
}

/// Every triple's origin to the one clone LSN, then enabled.
pub async fn advance_and_enable<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<Vec<steps::advance_and_enable::Enabled>> {
    let mut clones = Sessions::clone(plane, state.clone_info()?).await?;
    let clone_lsn = state.clone_lsn()?;
    let mut enabled = Vec::new();
    for triple in state.triples() {
        let target = clones.get(&triple.database).await?;
        enabled.push(
            steps::advance_and_enable::run(target, &triple.spec(&state.pipeline), clone_lsn)
                .await?,
        );
    }
    Ok(enabled)
}

/// Every triple streams.
pub async fn verify<P: ControlPlane>(
    plane: &P,
    state: &State,
) -> Result<Vec<steps::verify::Verification>> {
    let mut sources = Sessions::source(plane).await?;
    let mut clones = Sessions::clone(plane, state.clone_info()?).await?;
    let mut verified = Vec::new();
    // One wait for all: the task's Lambda timeout bounds the whole loop.
    let deadline = std::time::Instant::now() + VERIFY_WAIT;
    for triple in state.triples() {
        let source = &*sources.get(&triple.database).await?;
        let target = &*clones.get(&triple.database).await?;
        let wait = deadline.saturating_duration_since(std::time::Instant::now());
        verified
            .push(steps::verify::run(source, target, &triple.spec(&state.pipeline), wait).await?);
    }
    Ok(verified)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub pipeline: String,
    pub registered_at: u64,
}

/// Complete the pipeline's inventory and mark it streaming, for the lag
/// monitor and teardown (a put: idempotent).
pub async fn register<C: Cloud>(cloud: &C, state: &State) -> Result<Registered> {
    state.clone_info()?;
    let record = state.record(Phase::Streaming, seconds_now());
    // Only the setup that holds the record registers it: a later setup of
    // the id that took it over is not overwritten by this one.
    let expected = match &record.setup_execution {
        Some(execution) => Expected::OwnedBy(execution.clone()),
        None => Expected::Unowned,
    };
    cloud
        .coordination()
        .put_pipeline(&record, &expected)
        .await?;
    tracing::info!(pipeline = %state.pipeline.id, "pipeline registered for monitoring");
    Ok(Registered {
        pipeline: state.pipeline.id.to_string(),
        registered_at: record.registered_at,
    })
}

pub(crate) fn seconds_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Undo the databases and clone of `created` (see [`undo`] for the
/// share), for every triple of the pipeline. The target is optional: an
/// unreachable clone must never keep a source slot alive. Every triple is
/// attempted; the first error is returned.
pub async fn cleanup<P: ControlPlane>(
    plane: &P,
    state: &State,
    created: &UndoPlan,
) -> Result<steps::cleanup::CleanupReport> {
    let mut sources = Sessions::source(plane).await?;
    let mut clones = match (created.subscription, state.clone_info()) {
        (true, Ok(info)) => match Sessions::clone(plane, info).await {
            Ok(sessions) => Some(sessions),
            Err(e) => {
                tracing::warn!(error = %e, kind = e.name(), "no clone login; dropping the source side only");
                None
            }
        },
        _ => None,
    };
    let made = state.created.source.as_ref();
    let mut report = steps::cleanup::CleanupReport::default();
    let mut first_error = None;
    for triple in state.triples() {
        let target = match clones.as_mut() {
            Some(sessions) => match sessions.get(&triple.database).await {
                Ok(client) => Some(&*client),
                Err(e) => {
                    tracing::warn!(error = %e, kind = e.name(), database = %triple.database, "clone unreachable; dropping the source side only");
                    None
                }
            },
            None => None,
        };
        // A publication this run reused (a user's, unmarked) stays.
        let publication = created.publication
            && made
                .and_then(|m| m.triples.iter().find(|t| t.slot == triple.slot.as_str()))
                .is_none_or(|t| t.publication_created);
        let plan = UndoPlan {
            publication,
            clone: None,
            share: None,
            ..created.clone()
        };
        let result = match sources.get(&triple.database).await {
            Ok(source) => {
                steps::cleanup::run(plane, source, target, &triple.spec(&state.pipeline), &plan)
                    .await
            }
            Err(e) => {
                // The slot is what hurts production, and a slot can be
                // dropped from any database: when the triple's own
                // database refuses us, through the login's.
                if plan.slot {
                    if let Ok(login) = sources.get(state.source.login_database()).await {
                        match steps::cleanup::drop_slot(login, triple.slot.as_str()).await {
                            Ok(dropped) => report.slot_dropped |= dropped,
                            Err(e) => {
                                tracing::error!(slot = %triple.slot, error = %e, "could not drop the slot")
                            }
                        }
                    }
                }
                Err(e)
            }
        };
        match result {
            Ok(done) => {
                report.subscription_dropped |= done.subscription_dropped;
                report.slot_dropped |= done.slot_dropped;
                report.publication_dropped |= done.publication_dropped;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(clone_id) = &created.clone {
        match plane.delete_clone(clone_id).await {
            Ok(deleted) => report.clone_deleted = deleted,
            Err(e) => {
                tracing::error!(pipeline = %state.pipeline.id, error = %e, kind = e.name(), "cleanup could not delete the clone");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// What the cleanup task did: the databases and the clone, then the share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupTaskReport {
    #[serde(flatten)]
    pub databases: steps::cleanup::CleanupReport,
    pub share_deleted: bool,
    /// The inventory record a failed setup wrote, removed after its
    /// cleanup (the cleanup task's; a local teardown leaves it false).
    #[serde(default)]
    pub inventory_removed: bool,
}

/// Carry out an undo plan: [`cleanup`], then the RAM share it names. Both
/// parts are attempted; the first error is returned. The setup's cleanup
/// task undoes [`State::undo_plan`]; a teardown, [`State::undo_everything`].
pub async fn undo<C: Cloud>(
    cloud: &C,
    state: &State,
    plan: &UndoPlan,
) -> Result<CleanupTaskReport> {
    // Boxed: the nested async state machines would otherwise exceed the
    // compiler's type-layout depth in the cleanup binary.
    let databases = Box::pin(cleanup(&plane(cloud, state), state, plan)).await;
    let share = match &plan.share {
        Some(share_arn) => cloud.share().delete_share(share_arn).await,
        None => Ok(false),
    };
    match (databases, share) {
        (Ok(databases), Ok(share_deleted)) => Ok(CleanupTaskReport {
            databases,
            share_deleted,
            inventory_removed: false,
        }),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}
