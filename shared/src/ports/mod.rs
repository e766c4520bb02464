//! The ports: what the workflow needs from the cloud, by role. Each is
//! implemented by an AWS adapter (`crate::aws`) and by the local
//! application (the `clonesync-local` crate) side by side, and none has an
//! SDK type in its signature.
//!
//! - [`Clones`] / [`ControlPlane`]: the clone control plane.
//! - [`ResourceShare`]: the share of the source cluster.
//! - [`Coordination`]: the registry and the task callbacks of the waits.
//! - [`RunStore`]: documents of one run that outgrow the state (the runs
//!   bucket).
//!
//! [`Cloud`] bundles one of each for the handlers.

pub(crate) mod clones;
pub(crate) mod coordination;
pub(crate) mod runs;
pub(crate) mod share;

pub use clones::{Clones, ControlPlane, SourceLogin};
pub use coordination::Coordination;
pub use runs::RunStore;
pub use share::ResourceShare;

/// The ports of one cloud, and the Region its steps run in.
pub trait Cloud: Sync {
    type Clones: Clones;
    type Share: ResourceShare;
    type Coordination<'a>: Coordination
    where
        Self: 'a;
    type Runs<'a>: RunStore
    where
        Self: 'a;

    fn clones(&self) -> &Self::Clones;
    fn share(&self) -> &Self::Share;
    fn coordination(&self) -> Self::Coordination<'_>;

    /// The runs bucket; `Config.Invalid` for a function not given one.
    fn runs(&self) -> crate::error::Result<Self::Runs<'_>>;

    /// The Region the steps run in (input ARNs must be in it).
    fn region(&self) -> &str;
}
