//! Pause or resume a streaming pipeline's subscription on its copy: the
//! subscription is disabled (enabled); its slot on the source is never
//! touched, so nothing is lost while paused (the slot keeps the WAL).
//!
//! Idempotent: disabling a disabled subscription, or enabling an enabled
//! one, changes nothing. A subscription that is not there is
//! `Target.SubscriptionMissing` ([`present`]), checked for every triple
//! before any is changed by the workflow, so a pipeline is never left
//! half paused. Leaves behind: nothing.

use crate::error::{Error, Result};
use crate::pg::subscription;
use crate::pipeline::Phase;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// Which way [`run`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pausing {
    Pause,
    Resume,
}

impl Pausing {
    /// The phase a pipeline in `phase` is in once this is done: pausing a
    /// switched-over pipeline leaves it switched over.
    pub fn phase_after(self, phase: Phase) -> Phase {
        match self {
            Pausing::Pause if phase == Phase::SwitchedOver => Phase::SwitchedOver,
            Pausing::Pause => Phase::Paused,
            Pausing::Resume => Phase::Streaming,
        }
    }
}

/// `Target.SubscriptionMissing` unless the subscription exists.
pub async fn present(target: &Client, name: &str) -> Result<()> {
    match subscription::subscription_info(target, name).await? {
        Some(_) => Ok(()),
        None => Err(Error::SubscriptionMissing {
            subscription: name.to_string(),
        }),
    }
}

/// Disable (pause) or enable (resume) the subscription.
pub async fn run(target: &Client, name: &str, pausing: Pausing) -> Result<()> {
    match pausing {
        Pausing::Pause => subscription::disable(target, name).await,
        Pausing::Resume => subscription::enable(target, name).await,
    }
}
