//! Pick up the tables that appeared in a subscription's publication.
//!
//! A table created on the source after setup is in a `FOR ALL TABLES` or
//! `FOR TABLES IN SCHEMA` publication at once, but the subscription skips
//! its rows (silently: the table is not in `pg_subscription_rel`) until
//! `ALTER SUBSCRIPTION ... REFRESH PUBLICATION` adds it. With
//! `copy_data = true` that copies the new tables only, at a snapshot taken
//! then, after which the table's own sync catches up to the subscription:
//! every row written since the table's creation is in the copy or in the
//! stream after it, none in both.
//!
//! The refresh runs only when every newly published table exists on the
//! target (the schema change apply made it); a refresh with a table
//! missing would fail as a whole. With schema changes on, a missing table
//! is first created on the target from the source's definition: that is
//! the case of `CREATE TABLE AS` and `SELECT INTO`, whose rows reach the
//! stream before the command that makes the table, so apply stops on them
//! ("target relation does not exist") until this step has made it
//! ([`Refreshed::created_on_target`]), each table on its own and parents
//! before their children, whatever the names' order. What still is
//! missing is reported ([`Refreshed::missing_on_target`]), with why it
//! could not be made ([`Refreshed::not_created`]). A paused (disabled) subscription is
//! not refreshed: PostgreSQL refuses to, and it will be on resume.
//! A table-list publication never grows by itself: its tables are the ones
//! the input listed (a setup run again with more tables adds them). A
//! table that joins the subscription and already has rows on the target
//! (the clone copied it, the scope left it out) is emptied first
//! ([`Refreshed::emptied`]): the copy brings all of it, and would collide
//! with the stale rows otherwise.
//!
//! A `NOT VALID` constraint a replayed command put on a new table is held
//! back while the table is copied (rows from before it would fail the
//! copy for ever) and added back, still `NOT VALID`, by a later refresh
//! once the copy is done ([`Refreshed::constraints_held_back`],
//! [`Refreshed::constraints_restored`]).
//!
//! Idempotent: with nothing new it changes nothing. Leaves behind: the
//! new tables in the subscription (and their copy running), and until
//! their copy is done the constraints held back, recorded in
//! `clonesync.ddl_deferred_constraint` on the copy.

use crate::error::{Error, Result};
use crate::pg::{ddl, subscription};
use crate::pipeline::PipelineSpec;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refreshed {
    pub subscription: String,
    /// New tables the refresh added (their copy started).
    pub added: Vec<String>,
    /// Published tables the target did not have, created now from the
    /// source's definition.
    #[serde(default)]
    pub created_on_target: Vec<String>,
    /// Tables joining the subscription whose stale rows on the target were
    /// removed before their copy.
    #[serde(default)]
    pub emptied: Vec<String>,
    /// Published tables the target does not have: not refreshed.
    pub missing_on_target: Vec<String>,
    /// Of those, the ones that could not be made from the source's
    /// definition now, each with why (tried again at the next refresh).
    #[serde(default)]
    pub not_created: Vec<(String, String)>,
    /// New tables not added yet: a schema change on them is captured on
    /// the source and has not reached the copy (added at a later refresh).
    #[serde(default)]
    pub waiting_for_stream: Vec<String>,
    /// Tables still being copied.
    pub syncing: Vec<String>,
    /// `NOT VALID` constraints of the tables added now, held back on the
    /// copy while they are copied (`schema.table.constraint`): rows the
    /// source kept from before such a constraint would fail the copy.
    #[serde(default)]
    pub constraints_held_back: Vec<String>,
    /// Constraints held back before whose table's copy is done, added
    /// back now (still `NOT VALID`).
    #[serde(default)]
    pub constraints_restored: Vec<String>,
    /// Why nothing was tried (paused).
    pub skipped: Option<String>,
}

pub async fn run(source: &Client, target: &Client, spec: &PipelineSpec) -> Result<Refreshed> {
    let name = spec.subscription.as_str();
    let info = subscription::subscription_info(target, name)
        .await?
        .ok_or_else(|| Error::SubscriptionMissing {
            subscription: name.to_string(),
        })?;
    let mut refreshed = Refreshed {
        subscription: name.to_string(),
        ..Refreshed::default()
    };
    let subscribed = subscription::subscribed_tables(target, name).await?;
    refreshed.syncing = subscribed
        .iter()
        .filter(|(_, syncing)| *syncing)
        .map(|(t, _)| t.to_string())
        .collect();
    if !info.enabled {
        refreshed.skipped = Some("the subscription is disabled (paused)".into());
        return Ok(refreshed);
    }
    let schema_changes = spec.schema_changes && ddl::apply_installed(target).await?;
    if schema_changes {
        refreshed.constraints_restored = ddl::restore_deferred_constraints(target).await?;
    }
    let in_flight = if schema_changes {
        ddl::table_changes_in_flight(source, target).await?
    } else {
        Vec::new()
    };
    make_tables_written_before_made(target, spec, &in_flight, &mut refreshed).await?;
    if schema_changes {
        make_tables_only_the_stream_names(source, target, spec, &mut refreshed).await?;
    }
    let published = subscription::published_tables(source, &spec.publication).await?;
    let new: Vec<_> = published
        .into_iter()
        .filter(|t| !subscribed.iter().any(|(s, _)| s == t))
        .collect();
    if new.is_empty() {
        return Ok(refreshed);
    }
    // A table whose schema change has not reached the copy yet would be
    // copied in its newer shape into its older one ("missing replicated
    // columns"): the refresh waits for the stream.
    refreshed.waiting_for_stream = new
        .iter()
        .filter(|t| in_flight.iter().any(|c| &c.table == *t))
        .map(ToString::to_string)
        .collect();
    if !refreshed.waiting_for_stream.is_empty() {
        tracing::info!(pipeline = %spec.id, waiting = ?refreshed.waiting_for_stream, "new tables wait for their schema changes to reach the copy");
        return Ok(refreshed);
    }
    let mut present = subscription::existing_tables(target, &new).await?;
    if schema_changes {
        // Each table on its own, whatever order its name gives it: one
        // that cannot be made (its parent not there yet, a lock, a schema
        // the copy lacks) is named and the others are made; passes repeat
        // while one makes progress, so a parent made late lets its
        // children follow.
        let mut todo: Vec<&crate::pg::TableName> =
            new.iter().filter(|t| !present.contains(t)).collect();
        loop {
            let mut failed = Vec::new();
            let before = todo.len();
            for table in todo {
                // Dropped on the source since: nothing to make.
                let Some(definition) = ddl::source_table_definition(source, table).await? else {
                    continue;
                };
                match ddl::create_table_from_definition(target, table, &definition).await {
                    Ok(()) => {
                        tracing::info!(pipeline = %spec.id, table = %table, "published table created on the target from the source's definition");
                        refreshed.created_on_target.push(table.to_string());
                    }
                    Err(e) => failed.push((table, e.to_string())),
                }
            }
            if failed.is_empty() || failed.len() == before {
                refreshed.not_created = failed
                    .into_iter()
                    .map(|(t, why)| (t.to_string(), why))
                    .collect();
                break;
            }
            todo = failed.into_iter().map(|(t, _)| t).collect();
        }
        present = subscription::existing_tables(target, &new).await?;
    }
    refreshed.missing_on_target = new
        .iter()
        .filter(|t| !present.contains(t))
        .map(ToString::to_string)
        .collect();
    if !refreshed.missing_on_target.is_empty() {
        tracing::warn!(pipeline = %spec.id, subscription = name, missing = ?refreshed.missing_on_target, "published tables missing on the target: not refreshed");
        return Ok(refreshed);
    }
    // A table that joins the subscription is copied whole: what the target
    // held of it (a table the clone copied that the scope left out until
    // now) goes first, or the copy would collide with it.
    for table in &new {
        if subscription::emptied_if_filled(target, table).await? {
            tracing::info!(pipeline = %spec.id, table = %table, "stale rows of a table joining the subscription removed before its copy");
            refreshed.emptied.push(table.to_string());
        }
    }
    // Only replayed commands put a NOT VALID constraint on a table the
    // copy has not had yet.
    if schema_changes {
        refreshed.constraints_held_back = ddl::defer_unvalidated_constraints(target, &new).await?;
        if !refreshed.constraints_held_back.is_empty() {
            tracing::info!(pipeline = %spec.id, constraints = ?refreshed.constraints_held_back, "NOT VALID constraints held back while their tables are copied");
        }
    }
    subscription::refresh_publication(target, &spec.subscription).await?;
    refreshed.added = new.iter().map(ToString::to_string).collect();
    tracing::info!(pipeline = %spec.id, subscription = name, added = ?refreshed.added, "new tables added to the subscription");
    Ok(refreshed)
}

/// A table made with its rows (`CREATE TABLE AS`, `SELECT INTO`) whose
/// command has not reached the copy: its rows come first in the stream,
/// and apply stops on them until the table exists. It is made from the
/// definition the command left (not the source's present one: the table
/// may have changed or be gone since), the first such command per table
/// only, and only when the scope publishes it. The rows themselves are
/// skipped by apply (the table is not in the subscription yet); the
/// refresh copies the table whole once its commands have arrived.
async fn make_tables_written_before_made(
    target: &Client,
    spec: &PipelineSpec,
    in_flight: &[ddl::TableChangeInFlight],
    refreshed: &mut Refreshed,
) -> Result<()> {
    let mut seen = Vec::new();
    for change in in_flight {
        if seen.contains(&&change.table) {
            continue;
        }
        seen.push(&change.table);
        let Some(definition) = &change.made_with_rows else {
            continue;
        };
        if !spec.scope.publishes(&change.table)
            || !subscription::existing_tables(target, std::slice::from_ref(&change.table))
                .await?
                .is_empty()
        {
            continue;
        }
        match ddl::create_table_from_definition(target, &change.table, definition).await {
            Ok(()) => {
                tracing::info!(pipeline = %spec.id, table = %change.table, command = %change.command_tag, "table made with its rows created on the target from its command's definition");
                refreshed.created_on_target.push(change.table.to_string());
            }
            Err(e) => refreshed
                .not_created
                .push((change.table.to_string(), e.to_string())),
        }
    }
    Ok(())
}

/// A table apply stops on that no queue row made and the source no longer
/// has (made by a command no event trigger sees, `EXPLAIN ANALYZE CREATE
/// TABLE AS`, and dropped since): only the stream knows its name and
/// columns. Read from the slot's pending transactions while apply is
/// stopped (a running walsender holds the slot: nothing is read), and made
/// as a stand-in ([`ddl::create_stand_in_table`]). A table the source
/// still has is left to the other paths, which make it as it is.
async fn make_tables_only_the_stream_names(
    source: &Client,
    target: &Client,
    spec: &PipelineSpec,
    refreshed: &mut Refreshed,
) -> Result<()> {
    // Only while the apply worker is down after failing (PostgreSQL starts
    // it again some seconds later): a running one needs nothing, and the
    // peek decodes the slot's WAL from its restart position.
    if !crate::pg::stream::apply_stopped_on_errors(target, spec.subscription.as_str()).await? {
        return Ok(());
    }
    // A stopped apply stops on its first pending transaction; a few more
    // cover a restart in between.
    let Some(relations) = crate::pg::stream::pending_relations(
        source,
        spec.slot.as_str(),
        &[spec.publication.as_str()],
        20,
    )
    .await?
    else {
        return Ok(());
    };
    let applied = crate::pg::stream::applied_up_to(target, spec.subscription.as_str()).await?;
    for relation in relations
        .iter()
        .filter(|r| applied.is_none_or(|a| r.final_lsn > a))
    {
        let one = std::slice::from_ref(&relation.table);
        if !subscription::existing_tables(target, one).await?.is_empty()
            || !subscription::existing_tables(source, one).await?.is_empty()
        {
            continue;
        }
        match ddl::create_stand_in_table(target, &relation.table, &relation.columns).await {
            Ok(()) => {
                tracing::warn!(pipeline = %spec.id, table = %relation.table, "a table only the stream names (made and dropped on the source unseen) made on the target as a stand-in");
                refreshed
                    .created_on_target
                    .push(format!("{} (stand-in)", relation.table));
            }
            Err(e) => refreshed
                .not_created
                .push((relation.table.to_string(), e.to_string())),
        }
    }
    Ok(())
}

/// With apply groups: each table of `scope` that no group's publication
/// has (made after setup) and that exists on the copy joins the group
/// publishing the fewest tables (`ALTER PUBLICATION ... ADD TABLE` on the
/// source), so that group's refresh copies it. Schema changes are off with
/// groups, so the copy has the table only once someone made it there; until
/// then it stays in no group, since a published table the copy lacks would
/// stop that group's apply, and the monitor, status and drift name it.
/// Returns each table with its group. The record's group lists are not
/// rewritten: the publications are what is replicated, and a setup run
/// again recomputes the lists.
pub async fn join_groups(
    source: &Client,
    target: &Client,
    scope: &crate::pipeline::Scope,
    groups: &[crate::pg::PgName],
) -> Result<Vec<(crate::pg::TableName, crate::pg::PgName)>> {
    let mut orphans = crate::steps::checks::not_published(source, scope, groups).await?;
    if orphans.is_empty() {
        return Ok(Vec::new());
    }
    let on_copy = subscription::existing_tables(target, &orphans).await?;
    orphans.retain(|t| on_copy.contains(t));
    let mut sizes = Vec::new();
    for group in groups {
        sizes.push((
            subscription::published_tables(source, group).await?.len(),
            group,
        ));
    }
    let mut joined = Vec::new();
    for table in orphans {
        let Some((size, group)) = sizes.iter_mut().min_by_key(|(n, _)| *n) else {
            break;
        };
        crate::pg::publication::add_tables(source, group, std::slice::from_ref(&table)).await?;
        *size += 1;
        joined.push((table, (*group).clone()));
    }
    Ok(joined)
}

/// What the copy did with the schema changes it received: applied, out
/// of scope, and the pending ones (the oldest listed). Reads only.
pub async fn schema_changes(target: &Client) -> Result<crate::pg::ddl::AppliedSummary> {
    crate::pg::ddl::applied_summary(target).await
}
