//! The procedure, one module per step, in the order they run:
//!
//! 1. [`preflight`] — check both sides, collect every failure, fail once.
//! 2. [`prepare_source`] — schema change capture, publication, then the
//!    logical slot.
//! 3. [`clone`] — the copy-on-write clone, taken after the slot exists.
//! 4. [`clone_lsn`] — the clone's start LSN, range-checked.
//! 5. [`clean_inherited`] — drop the slots, subscriptions and publication
//!    the clone copied from the source.
//! 6. [`create_subscription`] — disabled, attached to the source slot; the
//!    schema change apply trigger beside it.
//! 7. [`advance_and_enable`] — origin to the clone LSN, then enable.
//! 8. [`verify`] — apply worker running, slot active, lag.
//!
//! [`cleanup`] undoes what a failed run created. While a pipeline streams,
//! [`refresh`] adds the tables new to its publication, [`drift`]
//! compares the shape of every table in scope and [`prune_queue`] (run by
//! the lag monitor) removes the schema change queue rows every slot has.
//!
//! Every step is idempotent: running it again after it succeeded returns
//! the same result and changes nothing. [`checks`] holds the checks two
//! steps share.
//!
//! Steps talk to the databases through [`crate::pg`] and to the cloud
//! through [`crate::ports`], never to an AWS adapter or the workflow. Their
//! arguments come in one order: the control plane, the source session, the
//! target session, the pipeline, then what the step alone needs.

pub mod advance_and_enable;
pub(crate) mod checks;
pub mod clean_inherited;
pub mod cleanup;
pub mod clone;
pub mod clone_lsn;
pub mod create_subscription;
pub mod drift;
pub mod follow_rotation;
pub(crate) mod pause;
pub mod preflight;
pub mod prepare_source;
pub mod prune_queue;
pub(crate) mod refresh;
pub mod sequences;
pub(crate) mod switchover;
pub mod verify;
pub mod verify_table;
