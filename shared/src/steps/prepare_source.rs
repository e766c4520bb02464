//! Prepare the source: the schema change capture, the publication, then
//! the logical slot.
//!
//! The capture (event triggers and the queue table `clonesync.ddl_queue`,
//! [`crate::pg::ddl`]) comes first because the publication names the queue
//! table (for schema and table scopes), and both come before the slot.
//! It is shared by the pipelines of the database: installing it again
//! only brings its functions up to date. A schema `clonesync` that is not
//! clonesync's (another owner, another role that may create in it, an
//! object of another role's) is `Database.SchemaNotOurs` before anything
//! is made: its functions run inside every role's DDL, a superuser's too.
//!
//! Order matters: a slot decodes with the catalog as of each change, so a
//! publication created after the slot would be missing for the first
//! changes ("publication does not exist").
//!
//! Idempotent: an existing publication that publishes exactly the scope is
//! reused; one of this pipeline's whose table list lacks tables the input
//! now lists gets them added (`ALTER PUBLICATION ... ADD TABLE`; the
//! refresh copies them); an existing slot that is logical, uses pgoutput, belongs to this
//! database and is not consumed by anyone but this pipeline's subscription
//! is reused, and its `confirmed_flush_lsn` returned — the same LSN as at
//! creation for as long as nothing has consumed it. Anything else with
//! those names is a named conflict, never silently reused.
//!
//! Ownership: a publication carries a comment naming the pipeline and its
//! setup mark; only then is it reported as created (so cleanup drops it).
//! One marked by another setup of the same id is `Pipeline.IdInUse`, one
//! of another pipeline's `Source.PublicationConflict`. The slot is judged
//! by its publication, which is made first: a slot found by the call that
//! made the publication is another's (`Source.SlotConflict`); a slot found
//! beside this setup's publication is its own, since a crash between
//! creating it and returning must not leave it unowned, or cleanup would
//! leave it retaining WAL on production.
//!
//! With `pipeline.keyless_tables: "replica_identity_full"`, the tables in
//! scope without a key get REPLICA IDENTITY FULL first, recorded by the
//! capture so its removal gives them DEFAULT back.
//!
//! Leaves behind: the publication and the slot (recorded as created). If
//! the slot cannot be made, a publication made by this same call is
//! dropped again before the error is returned.

use crate::error::{Error, Result};
use crate::pg::slot::{self, SlotCreation};
use crate::pg::{ddl, publication, server, Lsn, PgName, SlotName};
use crate::pipeline::{Claim, PipelineSpec};
use crate::steps::checks::{logical_decoding, slot_conflict};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePrepared {
    pub publication: PgName,
    pub slot: SlotName,
    /// The slot's consistent point: changes committed after it are decoded.
    pub consistent_lsn: Lsn,
    /// This run owns the publication (made it now or in an earlier attempt).
    pub publication_created: bool,
    /// This run owns the slot.
    pub slot_created: bool,
}

/// What one call made, apart from what it found (the result itself is
/// the same however often the step runs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MadeNow {
    pub slot: bool,
    pub publication: bool,
    /// The schema change capture was not in this database before.
    pub capture: bool,
}

pub async fn run(source: &mut Client, spec: &PipelineSpec) -> Result<SourcePrepared> {
    prepare(source, spec).await.map(|(prepared, _)| prepared)
}

/// [`run`], also saying what this call made: a caller that must undo its
/// own work after a later failure undoes only that.
pub async fn prepare(
    source: &mut Client,
    spec: &PipelineSpec,
) -> Result<(SourcePrepared, MadeNow)> {
    // A publication made for a slot that cannot exist would be left behind.
    let facts = server::facts(source).await?;
    if let Some(failure) = logical_decoding(&facts) {
        return Err(Error::PreflightFailed {
            failures: vec![failure],
        });
    }
    let database = server::current_database(source).await?;
    let capture_made_now = if spec.schema_changes {
        ddl::install_capture(source).await?
    } else {
        false
    };
    // Before the publication: once published, a table without a key
    // refuses UPDATE and DELETE on production.
    if spec.keyless_full && spec.schema_changes {
        for table in ddl::give_keyless_full_identity(source, &spec.scope).await? {
            tracing::info!(pipeline = %spec.id, table = %table, "REPLICA IDENTITY FULL given to a table without a key (pipeline.keyless_tables)");
        }
    }
    let (publication_created, made_now) = match ensure_publication(source, spec).await {
        Ok(made) => made,
        Err(error) => {
            undo_capture(source, capture_made_now).await;
            return Err(error);
        }
    };
    let (consistent_lsn, slot_made_now) = match ensure_slot(source, spec, &database, made_now).await
    {
        Ok(made) => made,
        Err(error) => {
            // Leave nothing behind: undo the publication this call made.
            if made_now {
                if let Err(undo) =
                    publication::drop_publication_if_exists(source, &spec.publication).await
                {
                    tracing::error!(publication = %spec.publication, error = %undo, "could not drop the publication made by this failed call");
                }
            }
            undo_capture(source, capture_made_now).await;
            return Err(error);
        }
    };
    tracing::info!(
        pipeline = %spec.id,
        publication = %spec.publication,
        slot = %spec.slot,
        %consistent_lsn,
        "source prepared"
    );
    Ok((
        SourcePrepared {
            publication: spec.publication.clone(),
            slot: spec.slot.clone(),
            consistent_lsn,
            publication_created,
            slot_created: true,
        },
        MadeNow {
            slot: slot_made_now,
            publication: made_now,
            capture: capture_made_now,
        },
    ))
}

/// Remove a capture this failed call installed, unless another pipeline's
/// publication already relies on it.
async fn undo_capture(source: &mut Client, made_now: bool) {
    if !made_now {
        return;
    }
    if let Err(undo) = ddl::remove_if_unused(source).await {
        tracing::error!(error = %undo, "could not remove the schema change capture made by this failed call");
    }
}

/// Returns (owned by the pipeline, made by this call).
async fn ensure_publication(source: &mut Client, spec: &PipelineSpec) -> Result<(bool, bool)> {
    let mark = spec.ownership_mark();
    for _ in 0..2 {
        if let Some(info) = publication::publication_info(source, &spec.publication).await? {
            let claim = spec.claim_of(info.comment.as_deref());
            let marked = info.comment.clone().unwrap_or_default();
            match claim {
                Claim::SameIdOtherSetup => {
                    return Err(Error::PipelineIdInUse {
                        pipeline: spec.id.to_string(),
                        holder: format!(
                            "publication {:?} is marked {marked:?}, not {mark:?}",
                            spec.publication.as_str()
                        ),
                    })
                }
                Claim::OtherPipeline => {
                    return Err(Error::PublicationConflict {
                        publication: spec.publication.to_string(),
                        reason: format!("it is marked {marked:?}: another pipeline's"),
                    })
                }
                Claim::Ours | Claim::Unmarked => {}
            }
            let owned = claim == Claim::Ours;
            // Ours, and the input lists more tables than it has: they join
            // it (the refresh then copies them to the target).
            if let Some(missing) = info
                .missing_from(&spec.scope, spec.queue_table()?.as_ref())
                .filter(|_| owned)
            {
                publication::add_tables(source, &spec.publication, &missing).await?;
                tracing::info!(pipeline = %spec.id, publication = %spec.publication, added = ?missing, "tables added to the publication");
                return Ok((true, false));
            }
            if let Some(reason) = info.mismatch(&spec.scope, spec.queue_table()?.as_ref()) {
                return Err(Error::PublicationConflict {
                    publication: spec.publication.to_string(),
                    reason,
                });
            }
            return Ok((owned, false));
        }
        let queue = spec.queue_table()?;
        if publication::create_publication(
            source,
            &spec.publication,
            &spec.scope,
            queue.as_ref(),
            &mark,
        )
        .await?
        {
            return Ok((true, true));
        }
        // Created concurrently by someone else: judge it like any other.
    }
    Err(Error::PublicationConflict {
        publication: spec.publication.to_string(),
        reason: "it was created and dropped concurrently".into(),
    })
}

/// The slot's consistent point, and whether this call made the slot.
async fn ensure_slot(
    source: &Client,
    spec: &PipelineSpec,
    database: &str,
    publication_made_now: bool,
) -> Result<(Lsn, bool)> {
    for _ in 0..2 {
        if let Some(info) = slot::slot_info(source, spec.slot.as_str()).await? {
            let reason = match slot_conflict(source, &info, database, spec).await? {
                Some(reason) => Some(reason),
                // This call made the publication, which setup makes
                // before the slot: a slot already there is not this
                // setup's (its own publication would have been there too).
                None if publication_made_now => Some(format!(
                    "it was there before this setup made publication {:?}: another setup's, or left by one",
                    spec.publication.as_str()
                )),
                None => None,
            };
            if let Some(reason) = reason {
                return Err(Error::SlotConflict {
                    slot: spec.slot.to_string(),
                    reason,
                });
            }
            return info
                .confirmed_flush_lsn
                .map(|lsn| (lsn, false))
                .ok_or_else(|| Error::SlotConflict {
                    slot: spec.slot.to_string(),
                    reason: "it has no confirmed_flush_lsn (not yet consistent)".into(),
                });
        }
        match slot::create_logical_slot(source, &spec.slot).await? {
            SlotCreation::Created { consistent_lsn } => return Ok((consistent_lsn, true)),
            SlotCreation::AlreadyExists => continue,
        }
    }
    Err(Error::SlotConflict {
        slot: spec.slot.to_string(),
        reason: "it was created and dropped concurrently".into(),
    })
}
