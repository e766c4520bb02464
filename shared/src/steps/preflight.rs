//! Preflight: can this pipeline run against these servers?
//!
//! Reads only; running it any number of times changes nothing. Every check
//! runs even after one fails, and all failures come back together in one
//! `Preflight.Failed`, each with a hint, so a user fixes everything in one
//! round instead of one problem per attempt. Leaves behind: nothing.
//!
//! Subscriber-side limits are checked on the target when one is given. A
//! clone starts with its source's settings, so before the clone exists they
//! are checked on the source.

use crate::error::{Error, PreflightFailure, Result};
use crate::pg::server::{self, SlotSettings};
use crate::pg::{publication, slot};
use crate::pipeline::triples::{self, DatabaseSelection};
use crate::pipeline::{Claim, PipelineSpec, Scope, SourceCluster, Triple};
use crate::ports::ControlPlane;
use crate::steps::checks::{logical_decoding, slot_conflict, subscriber_limits, Subscriber};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio_postgres::Client;

/// What preflight found when nothing failed, and the pipeline's triples
/// (the plan every later step follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflightReport {
    pub source_version_num: i32,
    pub tables_in_scope: usize,
    pub warnings: Vec<String>,
    /// Every (publication, slot, subscription) to make, with its database
    /// and apply group.
    #[serde(default)]
    pub triples: Vec<Triple>,
}

/// The catalog this adapter reads (`pg_publication_namespace`, row filters)
/// appeared in PostgreSQL 15.
pub const MIN_VERSION_NUM: i32 = 150000;

fn failure(check: &str, detail: String, hint: &str) -> PreflightFailure {
    PreflightFailure {
        check: check.into(),
        detail,
        hint: hint.into(),
    }
}

/// Which databases the pipeline replicates, each with its scope: the one
/// named, the ones listed, or (`"all"`) every database the login may
/// connect to, templates and `rdsadmin` excluded. `login`: a session on
/// any database of the source. A listed database that does not exist or
/// cannot be connected to is a failure (collected, not raised).
pub async fn databases(
    login: &Client,
    source: &SourceCluster,
    default_scope: &Scope,
) -> Result<(Vec<(String, Scope)>, Vec<PreflightFailure>)> {
    let known = server::databases(login).await?;
    let mut failures = Vec::new();
    let wanted: Vec<(String, Scope)> = match (&source.database, &source.databases) {
        (_, Some(DatabaseSelection::All(_))) => known
            .iter()
            .filter(|d| {
                d.allows_connections && !d.is_template && d.may_connect && d.name != "rdsadmin"
            })
            .map(|d| (d.name.clone(), default_scope.clone()))
            .collect(),
        (_, Some(DatabaseSelection::List(list))) => list
            .iter()
            .map(|e| {
                (
                    e.name().to_string(),
                    e.scope().unwrap_or(default_scope).clone(),
                )
            })
            .collect(),
        (Some(db), None) => vec![(db.clone(), default_scope.clone())],
        (None, None) => vec![(source.login_database().to_string(), default_scope.clone())],
    };
    let mut usable = Vec::new();
    for (name, scope) in wanted {
        match known.iter().find(|d| d.name == name) {
            None => failures.push(failure(
                "database",
                format!("database {name:?} does not exist on the source"),
                "check source.database / source.databases",
            )),
            Some(d) if !d.allows_connections || d.is_template || !d.may_connect => {
                failures.push(failure(
                    "database",
                    format!(
                        "database {name:?} cannot be replicated: {}",
                        if d.is_template {
                            "it is a template"
                        } else if !d.allows_connections {
                            "it allows no connections"
                        } else {
                            "the login has no CONNECT privilege on it"
                        }
                    ),
                    "replicate another database, or GRANT CONNECT to the login",
                ))
            }
            Some(_) => usable.push((name, scope)),
        }
    }
    if usable.is_empty() && failures.is_empty() {
        failures.push(failure(
            "database",
            "no database of the source can be replicated".into(),
            "check source.databases and the login's CONNECT privileges",
        ));
    }
    Ok((usable, failures))
}

/// The triples of each database (`sessions`: database, its scope and a
/// session on it): one per database, or `apply_groups` per database with
/// the tables balanced by size. Tables a group's publication already
/// publishes stay in that group (a re-run, a re-seed that kept the
/// publications). A database with fewer tables than groups is a failure.
pub async fn plan(
    sessions: &[(String, Scope, &Client)],
    pipeline: &PipelineSpec,
    several_databases: bool,
    apply_groups: u32,
) -> Result<(Vec<Triple>, Vec<PreflightFailure>)> {
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for (database, scope, client) in sessions {
        let (tables, existing) = if apply_groups > 1 {
            let tables = server::tables_with_size(client, scope).await?;
            let mut existing = BTreeMap::new();
            for group in 1..=apply_groups {
                let (publication, _, _) = triples::triple_names(
                    pipeline,
                    database,
                    several_databases,
                    apply_groups,
                    group,
                )?;
                if let Some(info) = publication::publication_info(client, &publication).await? {
                    if info.comment.as_deref() == Some(pipeline.ownership_mark().as_str()) {
                        existing.insert(group, info.tables.into_iter().collect::<Vec<_>>());
                    }
                }
            }
            (tables, existing)
        } else {
            (Vec::new(), BTreeMap::new())
        };
        match triples::plan_database(
            pipeline,
            database,
            scope,
            several_databases,
            apply_groups,
            &tables,
            &existing,
        ) {
            Ok(made) => all.extend(made),
            Err(Error::InvalidInput { problems }) => {
                for problem in problems {
                    failures.push(failure(
                        "apply_groups",
                        problem,
                        "lower pipeline.apply_groups or widen the scope",
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut slots = BTreeSet::new();
    for triple in &all {
        if !slots.insert(triple.slot.as_str()) {
            failures.push(failure(
                "slot_name",
                format!("two triples would share slot {:?}", triple.slot.as_str()),
                "rename a database or give pipeline.slot another base",
            ));
        }
    }
    Ok((all, failures))
}

/// Check every triple (`sessions`: a session on each database of the
/// triples): the source once, each triple's slot and publication in its
/// database, and what all the triples need together: slots and WAL
/// senders on the source, apply workers, worker processes and origins on
/// the subscriber. `planned`: failures found while planning.
/// `extra_senders`: replication slots and WAL senders the control plane
/// needs beyond the pipeline's own (the local clone's base backup uses
/// two). `idle_window`: how long setup may hold the slot before a
/// subscription consumes it (its share and clone waits): the slot is made
/// before the clone and sits unused until the subscription is enabled.
/// The workflow's preflight is the one caller: one procedure for the
/// state machine, the tests and `clonesync preflight`.
#[allow(clippy::too_many_arguments)]
pub async fn run_triples<P: ControlPlane>(
    plane: &P,
    sessions: &[(String, &Client)],
    target: Option<&Client>,
    pipeline: &PipelineSpec,
    triples: &[Triple],
    scopes: &[(String, Scope)],
    planned: Vec<PreflightFailure>,
    extra_senders: i64,
    idle_window: Duration,
) -> Result<PreflightReport> {
    let mut failures = planned;
    let mut warnings = Vec::new();
    let mut fail =
        |check: &str, detail: String, hint: &str| failures.push(failure(check, detail, hint));
    let Some((_, source)) = sessions.first() else {
        return Err(Error::PreflightFailed { failures });
    };
    let source = *source;
    let session_of = |database: &str| {
        sessions
            .iter()
            .find(|(d, _)| d == database)
            .map(|(_, c)| *c)
    };

    let facts = server::facts(source).await?;

    if facts.version_num < MIN_VERSION_NUM {
        fail(
            "server_version",
            format!("source runs server_version_num {}", facts.version_num),
            "PostgreSQL 15 or later is required (Aurora PostgreSQL 15.x+)",
        );
    }
    if facts.in_recovery {
        fail(
            "source_is_primary",
            "the source is a standby".into(),
            "point clonesync at the writer (primary) endpoint",
        );
    }
    if let Some(failure) = logical_decoding(&facts) {
        fail(&failure.check, failure.detail, &failure.hint);
    }

    // A triple's own slot may already exist from an earlier attempt; then
    // it needs no new place.
    let mut new_slots = 0i64;
    for triple in triples {
        let Some(client) = session_of(&triple.database) else {
            continue;
        };
        let spec = triple.spec(pipeline);
        let publication = publication::publication_info(client, &triple.publication).await?;
        let claim = spec.claim_of(publication.as_ref().and_then(|i| i.comment.as_deref()));
        match slot::slot_info(client, spec.slot.as_str()).await? {
            None => new_slots += 1,
            // The publication's failure below says whose both are.
            Some(_) if claim.is_theirs() => {}
            Some(info) => {
                let conflict = match slot_conflict(client, &info, &triple.database, &spec).await? {
                    Some(reason) => Some(reason),
                    // Setup makes the publication before the slot and
                    // teardown drops the slot before the publication: a
                    // slot without its publication was made by someone
                    // else, or left by one.
                    None if publication.is_none() => Some(format!(
                        "publication {:?} in database {:?} does not: this setup did not make it",
                        triple.publication.as_str(),
                        triple.database
                    )),
                    None => None,
                };
                if let Some(reason) = conflict {
                    fail(
                        "slot_name",
                        format!("replication slot {:?} exists: {reason}", spec.slot.as_str()),
                        "choose another slot name, or tear down the pipeline that made it (or drop the slot if it is unused)",
                    );
                }
            }
        }
        let Some(info) = publication else {
            continue;
        };
        let mark = info.comment.as_deref().unwrap_or_default();
        match claim {
            Claim::SameIdOtherSetup => fail(
                "pipeline_id",
                format!(
                    "publication {:?} in database {:?} is marked {mark:?}: pipeline id {} is in use by another setup (another work directory or deployment)",
                    triple.publication.as_str(),
                    triple.database,
                    pipeline.id
                ),
                "choose another pipeline id, or tear that pipeline down from where it was set up",
            ),
            Claim::OtherPipeline => fail(
                "publication_name",
                format!(
                    "publication {:?} in database {:?} is marked {mark:?}: another pipeline's",
                    triple.publication.as_str(),
                    triple.database
                ),
                "choose another pipeline.publication base or pipeline id",
            ),
            Claim::Ours | Claim::Unmarked => {
                let queue = pipeline.queue_table()?;
                // This pipeline's own table list, grown by the input:
                // prepare-source adds the tables.
                let grows = claim == Claim::Ours
                    && info.missing_from(&triple.scope, queue.as_ref()).is_some();
                if let Some(reason) = info
                    .mismatch(&triple.scope, queue.as_ref())
                    .filter(|_| !grows)
                {
                    fail(
                        "publication_name",
                        format!(
                            "publication {:?} exists in database {:?}: {reason}",
                            triple.publication.as_str(),
                            triple.database
                        ),
                        "choose another publication name, or drop the old publication",
                    );
                }
            }
        }
    }
    let count = triples.len() as i64;
    let slots_needed = new_slots + extra_senders;
    let free_slots = facts.max_replication_slots - facts.slots_used;
    if free_slots < slots_needed {
        fail(
            "free_replication_slots",
            format!(
                "{free_slots} free of max_replication_slots = {} ({} needed: {new_slots} for the pipeline's {count} triple(s), {extra_senders} to make the clone)",
                facts.max_replication_slots, slots_needed
            ),
            "raise max_replication_slots (restart needed) or drop unused slots",
        );
    }
    let senders_needed = count + extra_senders;
    let free_senders = facts.max_wal_senders - facts.wal_senders_used;
    if free_senders < senders_needed {
        fail(
            "free_wal_senders",
            format!(
                "{free_senders} free of max_wal_senders = {} ({senders_needed} needed: one per triple, {extra_senders} to make the clone)",
                facts.max_wal_senders
            ),
            "raise max_wal_senders (restart needed)",
        );
    }

    let (slot_failures, slot_warnings) =
        slot_risks(&server::slot_settings(source).await?, idle_window);
    for failure in slot_failures {
        fail(&failure.check, failure.detail, &failure.hint);
    }
    warnings.extend(slot_warnings);

    let subscriber_facts = match target {
        Some(client) => server::facts(client).await?,
        None => facts.clone(),
    };
    let subscriber = if target.is_some() {
        Subscriber::Target
    } else {
        Subscriber::SourceInherited
    };
    for failure in subscriber_limits(&subscriber_facts, subscriber, count) {
        fail(&failure.check, failure.detail, &failure.hint);
    }

    if !server::login_is_superuser(source).await? {
        fail(
            "login_privileges",
            "the login is neither a superuser nor a member of rds_superuser".into(),
            if pipeline.schema_changes {
                "use a superuser (on Aurora a member of rds_superuser: GRANT rds_superuser TO <login>): the event trigger that captures schema changes, FOR ALL TABLES and FOR TABLES IN SCHEMA publications, and the subscription on the clone (the same login), need one"
            } else {
                "use a superuser (on Aurora a member of rds_superuser: GRANT rds_superuser TO <login>): FOR ALL TABLES and FOR TABLES IN SCHEMA publications, and the subscription on the clone (the same login), need one"
            },
        );
    }
    let mut tables_in_scope = 0;
    // The scope asked for, per database: a split into groups keeps only
    // the publishable tables it found, so the groups' lists would hide an
    // unlogged table or a missing schema.
    for (database, scope) in scopes {
        let Some(client) = session_of(database) else {
            continue;
        };
        // Named unlogged tables are refused as not permanent below; those
        // a schema or the whole database brings are left out by the
        // publication, and said.
        if !matches!(scope, Scope::Tables { .. }) {
            let unlogged = crate::steps::checks::not_replicated(client, scope).await?;
            if !unlogged.is_empty() {
                warnings.push(format!(
                    "{} unlogged table(s) in scope in database {:?} are not replicated (PostgreSQL does not replicate \
                     unlogged tables: their changes are not in the WAL); they stay empty on the copy, and status, verify \
                     and the monitor name them; ALTER TABLE ... SET LOGGED replicates one from the next refresh: {}",
                    unlogged.len(),
                    database,
                    unlogged.iter().take(20).cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        let ScopeTables {
            count: in_scope,
            keyless,
            generated_in_identity,
        } = scope_checks(client, scope, &mut fail).await?;
        if !generated_in_identity.is_empty() {
            let more = if generated_in_identity.len() > 20 {
                ", ..."
            } else {
                ""
            };
            fail(
                "replica_identity_generated",
                format!(
                    "{} table(s) in database {database:?} would refuse UPDATE and DELETE on the source once published: \
                     the columns that identify their rows (primary key, identity index, or every column for REPLICA \
                     IDENTITY FULL, which a table without a key gets) include a generated column, which PostgreSQL 18 \
                     does not allow in a published table's identity unless the publication publishes it (virtual \
                     ones it never does; stored ones would fail on the copy, whose columns are generated too): {}{more}",
                    generated_in_identity.len(),
                    generated_in_identity.iter().take(20).cloned().collect::<Vec<_>>().join(", ")
                ),
                "give each a primary key (or a replica identity index) over ordinary columns, or leave it out of the \
                 scope (a schema or table list)",
            );
        }
        if !keyless.is_empty() {
            let shown = keyless
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            let more = if keyless.len() > 20 { ", ..." } else { "" };
            if pipeline.keyless_full {
                warnings.push(format!(
                    "{} table(s) in database {database:?} have neither a primary key nor a replica identity: setup gives \
                     them REPLICA IDENTITY FULL (pipeline.keyless_tables), so UPDATE and DELETE on them keep working once \
                     published (each logs the whole old row), and teardown gives them DEFAULT back: {shown}{more}",
                    keyless.len()
                ));
            } else {
                fail(
                    "replica_identity",
                    format!(
                        "{} table(s) have neither a primary key nor a replica identity: {shown}{more}",
                        keyless.len()
                    ),
                    "add a primary key, or ALTER TABLE ... REPLICA IDENTITY FULL / USING INDEX, or let setup do the \
                     latter (pipeline.keyless_tables \"replica_identity_full\"), or narrow the scope; otherwise UPDATE \
                     and DELETE on them fail on the source once published",
                );
            }
        }
        if in_scope == 0 {
            warnings.push(format!("no table is in scope in database {:?} yet; tables created later are published only by FOR ALL TABLES / FOR TABLES IN SCHEMA", database));
        }
        tables_in_scope += in_scope;
    }

    // Tables created later are published too (FOR ALL TABLES, TABLES IN
    // SCHEMA): one without a key would make its UPDATEs and DELETEs fail
    // on the source, unless the capture gives it an identity.
    if !matches!(pipeline.scope, Scope::Tables { .. }) {
        warnings.push(if pipeline.schema_changes {
            "a table created later without a primary key gets REPLICA IDENTITY FULL from the capture, in the creating \
             transaction, so UPDATE and DELETE on it keep working on the source; teardown gives it DEFAULT back"
                .to_string()
        } else {
            "schema changes are off: a table created later without a primary key makes UPDATE and DELETE on it fail \
             on the source while the publication covers it; give new tables a key, or turn schema changes on"
                .to_string()
        });
    }

    for failure in plane.preflight().await? {
        failures.push(failure);
    }

    if failures.is_empty() {
        Ok(PreflightReport {
            source_version_num: facts.version_num,
            tables_in_scope,
            warnings,
            triples: triples.to_vec(),
        })
    } else {
        Err(Error::PreflightFailed { failures })
    }
}

/// What the source's slot settings mean for a pipeline that keeps its slot
/// for months and leaves it unused through the clone: failures (the slot
/// would be invalidated before setup ends) and warnings (the risk each
/// value carries), each saying what it means.
pub fn slot_risks(
    settings: &SlotSettings,
    idle_window: Duration,
) -> (Vec<PreflightFailure>, Vec<String>) {
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let rate = settings.wal_bytes_per_second.filter(|r| *r > 0.0);
    match settings.max_slot_wal_keep_size_mb {
        None => {}
        Some(mb) if mb < 0 => warnings.push(
            "max_slot_wal_keep_size = -1 (unlimited): nothing invalidates the pipeline's slot, so the source keeps \
             every WAL segment the copy has not confirmed: through the clone (the slot is made first), and whenever \
             the copy stops applying. A slot left behind fills the source's disk; the monitor's retained-WAL alarm \
             watches it."
                .into(),
        ),
        Some(mb) => {
            let budget = mb as f64 * 1024.0 * 1024.0;
            let how_soon = match rate {
                Some(rate) => format!(
                    "; at this source's average write rate since its statistics were reset ({:.2} MB/s) that is \
                     about {} of writing",
                    rate / 1e6,
                    human_duration(budget / rate)
                ),
                None => String::new(),
            };
            warnings.push(format!(
                "max_slot_wal_keep_size = {mb} MB: when the pipeline's slot falls {mb} MB behind (the source writes \
                 that much during the clone, or while the copy is stopped or slow), PostgreSQL invalidates it \
                 (wal_status = lost) and the copy can only be re-seeded{how_soon}. Raise it if the clone may take \
                 longer than that."
            ));
        }
    }
    match settings.idle_replication_slot_timeout_s {
        None | Some(0) => {}
        Some(seconds) if (seconds as u64) < idle_window.as_secs() => failures.push(PreflightFailure {
            check: "idle_replication_slot_timeout".into(),
            detail: format!(
                "idle_replication_slot_timeout = {seconds} s, shorter than the {} s setup may leave the new slot \
                 unused while the share and the clone are made: PostgreSQL would invalidate it at a checkpoint and \
                 the clone could not be attached",
                idle_window.as_secs()
            ),
            hint: "set idle_replication_slot_timeout = 0 (off) or above the setup's share and clone waits in the \
                   source's parameter group (no restart needed), or shorten the waits"
                .into(),
        }),
        Some(seconds) => warnings.push(format!(
            "idle_replication_slot_timeout = {seconds} s: once streaming, a paused subscription or an absent apply \
             worker for longer than {} invalidates the pipeline's slot at the next checkpoint (invalidation_reason \
             idle_timeout) and the copy must be re-seeded.",
            human_duration(seconds as f64)
        )),
    }
    (failures, warnings)
}

fn human_duration(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 7200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86_400.0)
    }
}

/// Existence of what the scope names, and replica identity of every table
/// in it. Returns the number of tables in scope and those without a key
/// (neither a primary key nor a replica identity), as `"schema"."name"`.
async fn scope_checks(
    source: &Client,
    scope: &Scope,
    fail: &mut impl FnMut(&str, String, &str),
) -> Result<ScopeTables> {
    let identities = match scope {
        Scope::AllTables => server::table_identities(source, None, None).await?,
        Scope::Schemas { schemas } => {
            let names: Vec<String> = schemas.iter().map(|s| s.as_str().to_string()).collect();
            let found: BTreeSet<String> = server::existing_schemas(source, &names)
                .await?
                .into_iter()
                .collect();
            for missing in names.iter().filter(|n| !found.contains(*n)) {
                fail(
                    "scope_exists",
                    format!("schema {missing:?} does not exist on the source"),
                    "fix the schema list",
                );
            }
            server::table_identities(source, Some(&names), None).await?
        }
        Scope::Tables { tables } => {
            let pairs: Vec<(String, String)> = tables
                .iter()
                .map(|t| (t.schema.as_str().to_string(), t.name.as_str().to_string()))
                .collect();
            let found = server::table_identities(source, None, Some(&pairs)).await?;
            let present: BTreeSet<(String, String)> = found
                .iter()
                .map(|t| (t.schema.clone(), t.name.clone()))
                .collect();
            for (schema, name) in pairs.iter().filter(|p| !present.contains(*p)) {
                fail(
                    "scope_exists",
                    format!("table {schema:?}.{name:?} does not exist on the source (or is not a permanent table)"),
                    "fix the table list",
                );
            }
            found
        }
    };
    let lacking: Vec<String> = identities
        .iter()
        .filter(|t| !t.is_replicable())
        .map(|t| format!("{:?}.{:?}", t.schema, t.name))
        .collect();
    let generated: Vec<String> = identities
        .iter()
        .filter_map(|t| {
            t.generated_in_identity
                .as_ref()
                .map(|column| format!("{:?}.{:?} (column {column:?})", t.schema, t.name))
        })
        .collect();
    Ok(ScopeTables {
        count: identities.len(),
        keyless: lacking,
        generated_in_identity: generated,
    })
}

/// What preflight learns of the tables in scope.
struct ScopeTables {
    count: usize,
    /// Neither a primary key nor a replica identity.
    keyless: Vec<String>,
    /// PostgreSQL 18+: a generated column among the columns that identify
    /// a row, as it is or once setup gives a keyless table `FULL`.
    generated_in_identity: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn risks(
        keep_mb: Option<i64>,
        idle_s: Option<i64>,
        rate: Option<f64>,
    ) -> (Vec<PreflightFailure>, Vec<String>) {
        slot_risks(
            &SlotSettings {
                max_slot_wal_keep_size_mb: keep_mb,
                idle_replication_slot_timeout_s: idle_s,
                wal_bytes_per_second: rate,
            },
            HOUR,
        )
    }

    #[test]
    fn a_server_without_the_settings_gets_no_word() {
        assert_eq!(risks(None, None, None), (vec![], vec![]));
        assert_eq!(risks(None, Some(0), None), (vec![], vec![]));
    }

    #[test]
    fn each_keep_size_says_what_it_risks() {
        let (failures, warnings) = risks(Some(-1), None, None);
        assert!(failures.is_empty());
        assert!(warnings[0].contains("unlimited") && warnings[0].contains("fills"));
        // 1024 MB at 1 MiB/s: about 17 minutes of writing.
        let (failures, warnings) = risks(Some(1024), None, Some(1024.0 * 1024.0));
        assert!(failures.is_empty());
        assert!(
            warnings[0].contains("1024 MB") && warnings[0].contains("lost"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("about 17 min"), "{warnings:?}");
        let (_, warnings) = risks(Some(1024), None, None);
        assert!(
            !warnings[0].contains("about"),
            "no rate, no estimate: {warnings:?}"
        );
    }

    #[test]
    fn an_idle_timeout_shorter_than_setup_fails_and_a_longer_one_warns() {
        let (failures, warnings) = risks(None, Some(600), None);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].check, "idle_replication_slot_timeout");
        assert!(failures[0].detail.contains("3600 s"));
        assert!(warnings.is_empty());
        let (failures, warnings) = risks(None, Some(3600), None);
        assert!(failures.is_empty());
        assert!(warnings[0].contains("60 min"), "{warnings:?}");
    }
}
