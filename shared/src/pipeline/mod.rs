//! The pipeline's words: what identifies one pipeline, the console request,
//! the names and every rule that derives one, what a pipeline owns and
//! what a run created (the undo plan), and the records the registry keeps.
//!
//! This is the domain: it imports only [`crate::error`] and PostgreSQL's
//! value types ([`crate::pg::PgName`], [`crate::pg::Lsn`], ...). Adapters
//! and steps import it, never the other way.

pub(crate) mod arn;
pub mod names;
pub(crate) mod record;
pub(crate) mod request;
pub(crate) mod scope;
pub mod triples;
pub(crate) mod undo;

use crate::error::Result;
use crate::pg::{PgName, SlotName};
use serde::{Deserialize, Serialize};

pub use arn::ClusterArn;
pub use names::PipelineId;
pub use record::{Expected, OwnedShare, Phase, PipelineRecord, Wait, WaitKind};
pub use request::{CloneSettings, SourceCluster, Waits};
pub use scope::Scope;
pub use triples::{DatabaseSelection, Triple};
pub use undo::UndoPlan;

/// The names one pipeline uses on both sides. Travels in state machine
/// input and output: identifiers only, never credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// Stable id of the pipeline; marks the objects it owns.
    pub id: PipelineId,
    pub publication: PgName,
    pub slot: SlotName,
    pub subscription: PgName,
    pub scope: Scope,
    /// Capture DDL on the source and apply it on the target
    /// (`pipeline.schema_changes`, on unless "off").
    #[serde(default = "schema_changes_default")]
    pub schema_changes: bool,
    /// The mark this pipeline's setup put on what it made
    /// ([`names::ownership_mark`]): drawn when its first setup starts and
    /// kept in its record, so that what another setup of the same id made
    /// is never taken for its own. Empty for a pipeline set up before
    /// marks existed (and for tests' specs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub setup_mark: String,
    /// Tables in scope without a key at setup get REPLICA IDENTITY FULL
    /// (`pipeline.keyless_tables: "replica_identity_full"`, the operator's
    /// consent), recorded so teardown gives them DEFAULT back; otherwise
    /// preflight refuses them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keyless_full: bool,
}

fn schema_changes_default() -> bool {
    true
}

impl PipelineSpec {
    /// Default object names derived from the pipeline id, which must then be
    /// a valid slot name itself (`[a-z0-9_]`, at most 53 bytes so the
    /// `clonesync_` prefix still fits PostgreSQL's limit).
    pub fn with_defaults(id: &str, scope: Scope) -> Result<Self> {
        let name = names::default_object_name(id);
        Ok(PipelineSpec {
            id: PipelineId::new(id)?,
            publication: PgName::new(name.clone())?,
            subscription: PgName::new(name.clone())?,
            slot: SlotName::new(name)?,
            scope,
            schema_changes: true,
            setup_mark: String::new(),
            keyless_full: false,
        })
    }

    /// The comment that marks a publication as made by this pipeline's
    /// setup.
    pub fn ownership_mark(&self) -> String {
        names::ownership_mark(self.id.as_str(), &self.setup_mark)
    }

    /// Whose a publication comment says it is.
    pub fn claim_of(&self, comment: Option<&str>) -> Claim {
        match comment.and_then(names::parse_ownership_mark) {
            None => Claim::Unmarked,
            Some((id, mark)) if id == self.id.as_str() && mark == self.setup_mark => Claim::Ours,
            Some((id, _)) if id == self.id.as_str() => Claim::SameIdOtherSetup,
            Some(_) => Claim::OtherPipeline,
        }
    }

    /// The table the publication carries besides the scope: the schema
    /// change queue, when schema changes are on.
    pub fn queue_table(&self) -> Result<Option<crate::pg::TableName>> {
        if !self.schema_changes {
            return Ok(None);
        }
        crate::pg::TableName::new(names::CAPTURE_SCHEMA, names::CAPTURE_QUEUE).map(Some)
    }

    /// The clone's DB cluster identifier.
    pub fn clone_id(&self) -> String {
        names::clone_id(self.id.as_str())
    }
}

/// Whose a publication is, by its comment ([`PipelineSpec::claim_of`]).
/// A triple's slot is judged by its publication: setup makes the
/// publication first and teardown drops the slot first, so a slot whose
/// publication carries another mark is that other setup's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Marked by this pipeline's setup.
    Ours,
    /// Marked by another setup of the same pipeline id (another work
    /// directory or deployment): `Pipeline.IdInUse`.
    SameIdOtherSetup,
    /// Marked by another pipeline.
    OtherPipeline,
    /// No clonesync mark: a user's publication, or none at all.
    Unmarked,
}

impl Claim {
    /// Marked by someone else: neither it nor its triple's slot is ours.
    pub fn is_theirs(self) -> bool {
        matches!(self, Claim::SameIdOtherSetup | Claim::OtherPipeline)
    }
}

/// Where a clone can be reached. No credentials: the clone is reached with
/// the same login as its source (a copy has the same roles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneInfo {
    pub clone_id: String,
    pub host: String,
    pub port: u16,
}

/// The RAM share a run uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub share_arn: String,
    pub name: String,
    /// False when an existing share of ours was reused.
    pub created_now: bool,
}

/// How the target account came to hold the share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accepted {
    /// This call accepted the pending invitation.
    AcceptedNow { invitation_arn: String },
    /// The invitation had been accepted before (a retry or a duplicate event).
    AlreadyAccepted { invitation_arn: String },
    /// No invitation: shared within the organization, already associated.
    NoInvitationNeeded,
}
