//! The undo plan: what a run created and therefore owns, which cleanup
//! drops — exactly that and nothing more. A failed setup derives it from
//! its state (`$.created.*`); a teardown of a pipeline that reached
//! streaming owns everything named for it ([`UndoPlan::everything`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoPlan {
    #[serde(default)]
    pub publication: bool,
    #[serde(default)]
    pub slot: bool,
    /// The clone's id.
    #[serde(default)]
    pub clone: Option<String>,
    #[serde(default)]
    pub subscription: bool,
    /// The RAM share's ARN, when the run created the share.
    #[serde(default)]
    pub share: Option<String>,
}

impl UndoPlan {
    /// Everything a pipeline is named for: its subscription, slot,
    /// publication, its clone and (when given) its share.
    pub fn everything(clone_id: Option<String>, share_arn: Option<String>) -> UndoPlan {
        UndoPlan {
            publication: true,
            slot: true,
            clone: clone_id,
            subscription: true,
            share: share_arn,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == UndoPlan::default()
    }
}
