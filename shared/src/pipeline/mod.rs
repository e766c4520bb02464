//! The pipeline's words: what identifies one pipeline, the console request,
//! the names and every rule that derives one, what a pipeline owns and
//! what a run created (the undo plan), and the records the registry keeps.
//!
//! This is the domain: it imports only [`crate::error`] and PostgreSQL's
//! value types ([`crate::pg::PgName`], [`crate::pg::Lsn`], ...). Adapters
//! and steps import it, never the other way.

pub mod arn;
pub mod names;
pub mod record;
pub mod request;
pub mod scope;
pub mod triples;
pub mod undo;

use crate::error::Result;
use crate::pg::{PgName, SlotName};
use serde::{Deserialize, Serialize};

pub use arn::ClusterArn;
pub use record::{OwnedShare, Phase, PipelineRecord, Wait, WaitKind};
pub use request::{CloneSettings, SourceCluster, Waits};
pub use scope::Scope;
pub use triples::{DatabaseSelection, Triple};
pub use undo::UndoPlan;

/// The names one pipeline uses on both sides. Travels in state machine
/// input and output: identifiers only, never credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// Stable id of the pipeline; marks the objects it owns.
    pub id: PgName,
    pub publication: PgName,
    pub slot: SlotName,
    pub subscription: PgName,
    pub scope: Scope,
    /// Capture DDL on the source and apply it on the target
    /// (`pipeline.schema_changes`, on unless "off").
    #[serde(default = "schema_changes_default")]
    pub schema_changes: bool,
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
            id: PgName::new(id)?,
            publication: PgName::new(name.clone())?,
            subscription: PgName::new(name.clone())?,
            slot: SlotName::new(name)?,
            scope,
            schema_changes: true,
        })
    }

    /// The comment that marks a publication as made by this pipeline.
    pub fn ownership_mark(&self) -> String {
        names::ownership_mark(self.id.as_str())
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
