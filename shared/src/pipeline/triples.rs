//! A pipeline's triples: one (publication, slot, subscription) per
//! database it replicates and per apply group of that database's tables.
//!
//! One clone serves them all (AWS allows one cross-account clone of a
//! cluster per target account), so every triple's slot is made before the
//! clone and every triple's origin is advanced to the one clone LSN.
//!
//! Names: a pipeline that names one database (`source.database`) with one
//! group keeps the names it always had (`clonesync_<id>` for all three).
//! A pipeline over `source.databases` adds the database (`__<database>`,
//! or `__d<8 hex digits of its hash>` when the database's name is not
//! `[a-z0-9_]` or would not fit), and one with `apply_groups > 1` adds the
//! group (`__g1` .. `__gN`). The separator is two underscores because a
//! pipeline id may not hold them (`names::PipelineId`): no triple of
//! one pipeline can take another pipeline's default names (`orders` over
//! database `billing` is not pipeline `orders_billing`). Slots are
//! cluster-wide, so each triple's name is unique in the cluster;
//! publications and subscriptions take the same name so a DBA sees which
//! belong together.
//!
//! Groups: [`assign_groups`] balances tables over the groups by size
//! (largest first, each to the lightest group), keeping every table that a
//! group already publishes in that group, so running setup again (or
//! against a source whose tables grew) never moves a table between
//! subscriptions.

use crate::error::{Error, Result};
use crate::pg::{PgName, SlotName, TableName};
use crate::pipeline::{PipelineSpec, Scope};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most apply groups one database may be split into: each is a slot
/// and a WAL sender on the source and an apply worker on the clone.
pub const MAX_APPLY_GROUPS: u32 = 16;

/// Which databases of the source cluster a pipeline replicates
/// (`source.databases`): `"all"`, or a list of names, each optionally with
/// its own scope (otherwise `pipeline.scope`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DatabaseSelection {
    All(AllDatabases),
    List(Vec<DatabaseEntry>),
}

/// The word `"all"`: every database the login may connect to, templates
/// and `rdsadmin` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllDatabases {
    All,
}

/// One database of `source.databases`: a name, or a name and a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DatabaseEntry {
    Name(String),
    Scoped {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<Scope>,
    },
}

impl DatabaseEntry {
    pub fn name(&self) -> &str {
        match self {
            DatabaseEntry::Name(name) | DatabaseEntry::Scoped { name, .. } => name,
        }
    }

    pub fn scope(&self) -> Option<&Scope> {
        match self {
            DatabaseEntry::Name(_) => None,
            DatabaseEntry::Scoped { scope, .. } => scope.as_ref(),
        }
    }
}

/// One (publication, slot, subscription) of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triple {
    /// The database on the source, and on the clone, it replicates.
    pub database: String,
    /// 1-based apply group within the database.
    pub group: u32,
    pub publication: PgName,
    pub slot: SlotName,
    pub subscription: PgName,
    /// What its publication publishes: the database's scope, or the
    /// group's tables when the database is split.
    pub scope: Scope,
}

impl Triple {
    /// The triple as the steps take it: the pipeline's id with this
    /// triple's names and scope.
    pub fn spec(&self, pipeline: &PipelineSpec) -> PipelineSpec {
        PipelineSpec {
            id: pipeline.id.clone(),
            publication: self.publication.clone(),
            slot: self.slot.clone(),
            subscription: self.subscription.clone(),
            scope: self.scope.clone(),
            schema_changes: pipeline.schema_changes,
            setup_mark: pipeline.setup_mark.clone(),
            keyless_full: pipeline.keyless_full,
        }
    }

    /// The only triple of a pipeline over one database with one group: the
    /// pipeline's own names.
    pub fn single(pipeline: &PipelineSpec, database: &str) -> Triple {
        Triple {
            database: database.to_string(),
            group: 1,
            publication: pipeline.publication.clone(),
            slot: pipeline.slot.clone(),
            subscription: pipeline.subscription.clone(),
            scope: pipeline.scope.clone(),
        }
    }
}

/// The distinct databases of `triples`, in order of first appearance.
pub fn databases_of(triples: &[Triple]) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for t in triples {
        if !seen.contains(&t.database.as_str()) {
            seen.push(&t.database);
        }
    }
    seen
}

/// The suffix a triple's names get: the database (when the pipeline names
/// several) and the group (when there are several). `base_len`: the
/// longest base name, so the result always fits PostgreSQL's 63 bytes.
pub fn suffix(base_len: usize, database: Option<&str>, group: Option<u32>) -> String {
    let group = group.map(|g| format!("__g{g}")).unwrap_or_default();
    let database = match database {
        None => String::new(),
        Some(db) => {
            let plain = !db.is_empty()
                && db
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            let as_is = format!("__{db}");
            if plain && base_len + as_is.len() + group.len() <= crate::pg::name::MAX_NAME_BYTES {
                as_is
            } else {
                format!("__d{:08x}", fnv1a(db.as_bytes()))
            }
        }
    };
    format!("{database}{group}")
}

/// The longest suffix [`suffix`] may add (hash form, two-digit group): a
/// base name longer than 63 minus this cannot be used with several
/// databases or groups.
pub fn longest_suffix(databases: bool, groups: bool) -> usize {
    usize::from(databases) * "__d00000000".len() + usize::from(groups) * "__g16".len()
}

/// FNV-1a, 32 bits: stable across builds and platforms (the standard
/// library's hasher is not), which names must be.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The publication, slot and subscription names of group `group` (of
/// `groups`) of `database`.
pub fn triple_names(
    pipeline: &PipelineSpec,
    database: &str,
    several_databases: bool,
    groups: u32,
    group: u32,
) -> Result<(PgName, SlotName, PgName)> {
    let base_len = [
        pipeline.publication.as_str().len(),
        pipeline.slot.as_str().len(),
        pipeline.subscription.as_str().len(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let suffix = suffix(
        base_len,
        several_databases.then_some(database),
        (groups > 1).then_some(group),
    );
    Ok((
        PgName::new(format!("{}{suffix}", pipeline.publication))?,
        SlotName::new(format!("{}{suffix}", pipeline.slot))?,
        PgName::new(format!("{}{suffix}", pipeline.subscription))?,
    ))
}

/// The triples of one database: its names and scope, split into `groups`
/// when there is more than one. `several_databases`: the pipeline names
/// its databases (so names carry the database). `tables`: the tables in
/// the database's scope with their sizes (only read when `groups > 1`);
/// `existing`: the tables each group's publication already publishes.
pub fn plan_database(
    pipeline: &PipelineSpec,
    database: &str,
    scope: &Scope,
    several_databases: bool,
    groups: u32,
    tables: &[(TableName, i64)],
    existing: &BTreeMap<u32, Vec<TableName>>,
) -> Result<Vec<Triple>> {
    let named = |group: u32, scope: Scope| -> Result<Triple> {
        let (publication, slot, subscription) =
            triple_names(pipeline, database, several_databases, groups, group)?;
        Ok(Triple {
            database: database.to_string(),
            group,
            publication,
            slot,
            subscription,
            scope,
        })
    };
    if groups <= 1 {
        return Ok(vec![named(1, scope.clone())?]);
    }
    let assignment = assign_groups(tables, groups, existing);
    let mut triples = Vec::new();
    for (index, group_tables) in assignment.into_iter().enumerate() {
        let group = index as u32 + 1;
        if group_tables.is_empty() {
            return Err(Error::invalid(format!(
                "pipeline.apply_groups is {groups} but database {database:?} has only {} table(s) in scope: every group needs a table",
                tables.len()
            )));
        }
        triples.push(named(group, Scope::tables(group_tables)?)?);
    }
    Ok(triples)
}

/// Split `tables` (name, size in bytes) over `groups` groups: tables a
/// group already has (`existing`, by 1-based group) stay there; the rest
/// go, largest first, each to the group with the fewest bytes so far
/// (ties: the lower group). Each group's tables come back sorted by name,
/// so the same input always gives the same publications.
pub fn assign_groups(
    tables: &[(TableName, i64)],
    groups: u32,
    existing: &BTreeMap<u32, Vec<TableName>>,
) -> Vec<Vec<TableName>> {
    let groups = groups.max(1) as usize;
    let mut assigned: Vec<Vec<TableName>> = vec![Vec::new(); groups];
    let mut weight = vec![0i128; groups];
    let mut rest: Vec<&(TableName, i64)> = Vec::new();
    for entry @ (table, size) in tables {
        let kept = existing
            .iter()
            .find(|(g, list)| (1..=groups as u32).contains(g) && list.contains(table))
            .map(|(g, _)| *g as usize - 1);
        match kept {
            Some(g) => {
                assigned[g].push(table.clone());
                weight[g] += i128::from(*size.max(&0));
            }
            None => rest.push(entry),
        }
    }
    rest.sort_by(|(a, size_a), (b, size_b)| size_b.cmp(size_a).then_with(|| a.cmp(b)));
    for (table, size) in rest {
        // Equal bytes (empty tables): the group with fewer tables, so
        // every group gets one while there are tables enough.
        let lightest = (0..groups)
            .min_by_key(|g| (weight[*g], assigned[*g].len(), *g))
            .unwrap_or_default();
        assigned[lightest].push(table.clone());
        weight[lightest] += i128::from(*size.max(&0));
    }
    for list in &mut assigned {
        list.sort();
    }
    assigned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> TableName {
        TableName::new("public", name).unwrap()
    }

    fn spec() -> PipelineSpec {
        PipelineSpec::with_defaults("orders", Scope::AllTables).unwrap()
    }

    #[test]
    fn one_database_one_group_keeps_the_pipeline_names() {
        let triples = plan_database(
            &spec(),
            "orders",
            &Scope::AllTables,
            false,
            1,
            &[],
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(triples, vec![Triple::single(&spec(), "orders")]);
    }

    #[test]
    fn names_carry_the_database_and_the_group() {
        let tables = [(t("a"), 10), (t("b"), 5)];
        let triples = plan_database(
            &spec(),
            "billing",
            &Scope::AllTables,
            true,
            2,
            &tables,
            &BTreeMap::new(),
        )
        .unwrap();
        let slots: Vec<&str> = triples.iter().map(|t| t.slot.as_str()).collect();
        assert_eq!(
            slots,
            [
                "clonesync_orders__billing__g1",
                "clonesync_orders__billing__g2"
            ]
        );
        assert_eq!(triples[0].publication.as_str(), triples[0].slot.as_str());
        // A name that is not slot-safe is hashed, stably.
        let odd = suffix(20, Some("Billing-DB"), None);
        assert!(odd.starts_with("__d") && odd.len() == 11, "{odd}");
        assert_eq!(odd, suffix(20, Some("Billing-DB"), None));
        assert_ne!(odd, suffix(20, Some("billing-db"), None));
        // One that would not fit is hashed too.
        let long = "x".repeat(50);
        assert!(suffix(20, Some(&long), Some(3)).starts_with("__d"));
        assert!(20 + suffix(20, Some(&long), Some(16)).len() <= 20 + longest_suffix(true, true));
    }

    #[test]
    fn groups_are_balanced_by_size_and_stable() {
        let tables = [
            (t("big"), 100),
            (t("mid"), 60),
            (t("small1"), 30),
            (t("small2"), 30),
            (t("tiny"), 1),
        ];
        let groups = assign_groups(&tables, 2, &BTreeMap::new());
        assert_eq!(groups[0], vec![t("big"), t("tiny")]);
        assert_eq!(groups[1], vec![t("mid"), t("small1"), t("small2")]);
        assert_eq!(groups, assign_groups(&tables, 2, &BTreeMap::new()));
        // Sizes change and a table is added: nothing already placed moves.
        let grown = [
            (t("big"), 1),
            (t("mid"), 500),
            (t("small1"), 30),
            (t("small2"), 30),
            (t("tiny"), 900),
            (t("new"), 7),
        ];
        let existing = BTreeMap::from([(1, groups[0].clone()), (2, groups[1].clone())]);
        let again = assign_groups(&grown, 2, &existing);
        assert!(groups[0].iter().all(|x| again[0].contains(x)));
        assert!(groups[1].iter().all(|x| again[1].contains(x)));
        assert!(again[0].contains(&t("new")) || again[1].contains(&t("new")));
        // Empty tables still spread over every group.
        let empty = [(t("a"), 0), (t("b"), 0), (t("c"), 0)];
        assert!(assign_groups(&empty, 3, &BTreeMap::new())
            .iter()
            .all(|g| g.len() == 1));
        // A table that left the scope leaves its group.
        let fewer = [(t("big"), 1), (t("mid"), 1)];
        let shrunk = assign_groups(&fewer, 2, &existing);
        assert_eq!(shrunk, vec![vec![t("big")], vec![t("mid")]]);
    }

    #[test]
    fn more_groups_than_tables_is_named() {
        let err = plan_database(
            &spec(),
            "orders",
            &Scope::AllTables,
            false,
            3,
            &[(t("a"), 1), (t("b"), 1)],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(err.name(), "Input.Invalid");
        assert!(err.to_string().contains("apply_groups"), "{err}");
    }

    #[test]
    fn selection_json_shapes() {
        let all: DatabaseSelection = serde_json::from_str(r#""all""#).unwrap();
        assert_eq!(all, DatabaseSelection::All(AllDatabases::All));
        let list: DatabaseSelection = serde_json::from_str(
            r#"["orders", {"name": "billing", "scope": {"kind": "schemas", "schemas": ["public"]}}]"#,
        )
        .unwrap();
        let DatabaseSelection::List(entries) = list else {
            panic!("not a list")
        };
        assert_eq!(entries[0].name(), "orders");
        assert!(entries[0].scope().is_none());
        assert_eq!(entries[1].name(), "billing");
        assert!(matches!(entries[1].scope(), Some(Scope::Schemas { .. })));
        assert!(serde_json::from_str::<DatabaseSelection>(r#""some""#).is_err());
    }
}
