//! What identifies one pipeline, and what a run of it has created.

use crate::error::Result;
use crate::pg::{PgName, SlotName};
use crate::scope::Scope;
use serde::{Deserialize, Serialize};

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
}

impl PipelineSpec {
    /// Default object names derived from the pipeline id, which must then be
    /// a valid slot name itself (`[a-z0-9_]`, at most 53 bytes so the
    /// `clonesync_` prefix still fits PostgreSQL's limit).
    pub fn with_defaults(id: &str, scope: Scope) -> Result<Self> {
        let slot = SlotName::new(format!("clonesync_{id}"))?;
        let spec = PipelineSpec {
            id: PgName::new(id)?,
            publication: PgName::new(format!("clonesync_{id}"))?,
            subscription: PgName::new(format!("clonesync_{id}"))?,
            slot,
            scope,
        };
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<()> {
        self.scope.validate()
    }

    /// The comment that marks a publication as made by this pipeline.
    pub fn ownership_mark(&self) -> String {
        format!("clonesync pipeline {}", self.id)
    }
}

/// What a run has created and therefore owns; cleanup undoes exactly this.
/// Kept in the execution state as `created.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    #[serde(default)]
    pub publication: bool,
    #[serde(default)]
    pub slot: bool,
    #[serde(default)]
    pub clone: Option<String>,
    #[serde(default)]
    pub subscription: bool,
}

impl Created {
    pub fn is_empty(&self) -> bool {
        *self == Created::default()
    }
}
