//! Every name a pipeline derives from its id, and the marks that say an
//! object is a pipeline's. One place, so the steps, the AWS adapters, the
//! event handlers and the local cloud cannot disagree on a rule.
//!
//! | what | rule | example for `orders_dev` |
//! | --- | --- | --- |
//! | publication, slot, subscription (defaults) | `clonesync_<id>` | `clonesync_orders_dev` |
//! | clone (DB cluster) | `clonesync-<id, _ as ->` | `clonesync-orders-dev` |
//! | the clone's writer instance | `<clone>-writer` | `clonesync-orders-dev-writer` |
//! | RAM share | `clonesync-<id>` | `clonesync-orders_dev` |
//! | AWS tags (the clone) | `clonesync:pipeline = <id>`, `clonesync:source-cluster = <ARN>`, `clonesync:setup = <mark>` | |
//! | publication comment | `clonesync pipeline <id> setup <mark>` | `clonesync pipeline orders_dev setup 9f3c01d27ab4e865` |
//!
//! The setup mark is 16 hex digits drawn when a pipeline's first setup
//! starts and kept in its record: the id alone does not say whose an
//! object is, since another work directory or another deployment may run
//! a setup of the same id against the same source. A publication marked
//! `clonesync pipeline <id>` alone was made before marks existed; it is
//! the pipeline's whose record has no mark (an empty one).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Tag keys clonesync puts on what it creates in AWS; a resource carrying
/// `clonesync:pipeline = <id>` is that pipeline's and may be reused or
/// deleted by it, anything else is left alone.
pub const TAG_PIPELINE: &str = "clonesync:pipeline";
pub const TAG_SOURCE_CLUSTER: &str = "clonesync:source-cluster";
/// The setup mark of the pipeline that made a clone: a clone tagged with
/// the pipeline's id but another setup's mark is that other setup's.
pub const TAG_SETUP: &str = "clonesync:setup";

const WRITER_SUFFIX: &str = "-writer";

/// What every default object name starts with (slots carry no comment, so
/// their name is their mark).
pub const OBJECT_PREFIX: &str = "clonesync_";

/// What every publication mark starts with.
pub const MARK_PREFIX: &str = "clonesync pipeline ";

/// The schema of the schema change capture and apply, in every database
/// the pipelines of which capture DDL.
pub const CAPTURE_SCHEMA: &str = "clonesync";
/// The capture's queue table: one row per DDL command, in every such
/// pipeline's publication.
pub const CAPTURE_QUEUE: &str = "ddl_queue";

/// A pipeline id, valid by construction (as [`Scope`](super::Scope) is):
/// a lowercase letter, then `a-z`, `0-9` and `_`, so that it is a valid
/// slot name itself and every derived name is a valid identifier in
/// PostgreSQL and RDS; never `__`, which separates a triple's database and
/// group from the id (`triples::suffix`); and short enough that the
/// clone's writer instance (`clonesync-<id>-writer`) is a valid DB
/// identifier. Made by [`PipelineId::new`] or read from JSON (a bad one is
/// `Input.Invalid` there); nothing downstream checks it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PipelineId(String);

impl PipelineId {
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let shaped = id.starts_with(|c: char| c.is_ascii_lowercase())
            && !id.contains("__")
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !shaped {
            return Err(Error::invalid(format!(
                "pipeline.id {id:?} must start with a lowercase letter and hold only a-z, 0-9 and single _"
            )));
        }
        let writer = writer_instance_id(&clone_id(&id));
        if !valid_db_identifier(&writer) {
            return Err(Error::invalid(format!(
                "pipeline.id {id:?} gives the clone's writer instance {writer:?}, not a valid DB identifier (at most 63 characters, no trailing _)"
            )));
        }
        Ok(PipelineId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for PipelineId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PipelineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PipelineId {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        PipelineId::new(value)
    }
}

impl std::str::FromStr for PipelineId {
    type Err = Error;

    fn from_str(id: &str) -> Result<Self> {
        PipelineId::new(id)
    }
}

impl PartialEq<PipelineId> for &str {
    fn eq(&self, other: &PipelineId) -> bool {
        *self == other.0
    }
}

impl From<PipelineId> for String {
    fn from(id: PipelineId) -> String {
        id.0
    }
}

impl PartialEq<str> for PipelineId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PipelineId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The default name of the pipeline's publication, slot and subscription.
pub fn default_object_name(pipeline_id: &str) -> String {
    format!("{OBJECT_PREFIX}{pipeline_id}")
}

/// The clone's DB cluster identifier (RDS identifiers take no `_`).
pub fn clone_id(pipeline_id: &str) -> String {
    format!("clonesync-{}", pipeline_id.replace('_', "-"))
}

/// The clone's writer instance is named after its cluster.
pub fn writer_instance_id(clone_id: &str) -> String {
    format!("{clone_id}{WRITER_SUFFIX}")
}

/// The clone a writer instance belongs to, by the rule above; `None` for
/// an identifier that is not a writer's name.
pub fn clone_of_writer(instance_id: &str) -> Option<&str> {
    instance_id.strip_suffix(WRITER_SUFFIX)
}

/// The RAM share's name.
pub fn share_name(pipeline_id: &str) -> String {
    format!("clonesync-{pipeline_id}")
}

/// What separates the id from the setup mark in a publication's comment.
const SETUP_INFIX: &str = " setup ";

/// The comment that marks a publication as made by this pipeline's setup
/// (`setup_mark` empty: a pipeline recorded before marks existed).
pub fn ownership_mark(pipeline_id: &str, setup_mark: &str) -> String {
    if setup_mark.is_empty() {
        format!("{MARK_PREFIX}{pipeline_id}")
    } else {
        format!("{MARK_PREFIX}{pipeline_id}{SETUP_INFIX}{setup_mark}")
    }
}

/// The pipeline id and setup mark a publication comment names, if it is a
/// clonesync mark (the mark empty for one made before marks existed).
pub fn parse_ownership_mark(comment: &str) -> Option<(&str, &str)> {
    let rest = comment.strip_prefix(MARK_PREFIX)?;
    Some(match rest.split_once(SETUP_INFIX) {
        Some((id, mark)) => (id, mark),
        None => (rest, ""),
    })
}

/// A new setup mark: 64 bits from the operating system's generator, as
/// 16 hex digits.
pub fn new_setup_mark() -> Result<String> {
    let bits = getrandom::u64().map_err(|e| Error::ConfigInvalid {
        problems: vec![format!(
            "the operating system gave no random bits for the setup mark: {e}"
        )],
    })?;
    Ok(format!("{bits:016x}"))
}

/// Whether `mark` has the shape [`new_setup_mark`] gives (or is empty).
pub fn check_setup_mark(mark: &str) -> Result<()> {
    if mark.is_empty()
        || (mark.len() == 16
            && mark
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "setup_mark {mark:?} must be 16 lowercase hex digits"
        )))
    }
}

/// Whether `id` is a valid DB cluster / instance identifier: 1-63 letters,
/// digits or hyphens, starting with a letter, no `--`, no trailing hyphen.
pub fn valid_db_identifier(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_for_one_id() {
        assert_eq!(default_object_name("orders_dev"), "clonesync_orders_dev");
        assert_eq!(clone_id("orders_dev"), "clonesync-orders-dev");
        assert_eq!(
            writer_instance_id("clonesync-orders-dev"),
            "clonesync-orders-dev-writer"
        );
        assert_eq!(
            clone_of_writer("clonesync-orders-dev-writer"),
            Some("clonesync-orders-dev")
        );
        assert_eq!(clone_of_writer("clonesync-orders-dev"), None);
        assert_eq!(share_name("orders_dev"), "clonesync-orders_dev");
        assert_eq!(
            ownership_mark("orders_dev", "9f3c01d27ab4e865"),
            "clonesync pipeline orders_dev setup 9f3c01d27ab4e865"
        );
        assert_eq!(
            ownership_mark("orders_dev", ""),
            "clonesync pipeline orders_dev"
        );
    }

    #[test]
    fn marks_parse_back() {
        for (id, mark) in [("orders_dev", "9f3c01d27ab4e865"), ("orders_dev", "")] {
            assert_eq!(
                parse_ownership_mark(&ownership_mark(id, mark)),
                Some((id, mark))
            );
        }
        assert_eq!(parse_ownership_mark("made by hand"), None);
        let (a, b) = (new_setup_mark().unwrap(), new_setup_mark().unwrap());
        assert_ne!(a, b, "two setups draw two marks");
        assert!(check_setup_mark(&a).is_ok());
        for bad in [
            "x",
            "9F3C01D27AB4E865",
            "9f3c01d27ab4e86",
            "9f3c01d27ab4e865 ",
        ] {
            assert_eq!(check_setup_mark(bad).unwrap_err().name(), "Input.Invalid");
        }
    }

    #[test]
    fn pipeline_ids() {
        assert_eq!(PipelineId::new("orders_dev2").unwrap(), "orders_dev2");
        let longest = format!("a{}", "b".repeat(45));
        assert!(PipelineId::new(longest.clone()).is_ok());
        let too_long = format!("{longest}c");
        for bad in ["", "Orders", "2x", "a-b", "a b", "a__b", "a_", &too_long] {
            assert_eq!(
                PipelineId::new(bad).unwrap_err().name(),
                "Input.Invalid",
                "{bad:?}"
            );
        }
        // From JSON the same rules hold: a bad id is refused at parse.
        let parsed: std::result::Result<PipelineId, _> = serde_json::from_str("\"a__b\"");
        assert!(parsed.is_err());
        let parsed: PipelineId = serde_json::from_str("\"orders\"").unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), "\"orders\"");
    }

    #[test]
    fn db_identifiers() {
        assert!(valid_db_identifier("clonesync-orders-dev"));
        for bad in ["", "1abc", "a--b", "a-", "a_b", &"a".repeat(64)] {
            assert!(!valid_db_identifier(bad), "{bad}");
        }
    }
}
