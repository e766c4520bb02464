//! The switchover's reads on the databases: where the source writes, how
//! far each subscription applied, and whether every slot has confirmed a
//! position. The workflow (`workflow::switchover`) decides from them; the
//! acts themselves (sequences, disabling, dropping the source's objects)
//! are the [`crate::steps::sequences`], [`crate::steps::pause`] and
//! [`crate::steps::cleanup`] steps.
//!
//! Reads only: running them again changes nothing.

use crate::error::{Error, Result};
use crate::pg::wal::{self, WritePosition};
use crate::pg::{subscription, Lsn};
use tokio_postgres::Client;

/// The source's WAL insert position and how many writing transactions
/// are open.
pub async fn write_position(source: &Client) -> Result<WritePosition> {
    wal::write_position(source).await
}

/// How far the subscription `name` applied (its origin's progress);
/// `Target.SubscriptionMissing` when it is not there.
pub async fn applied(target: &Client, name: &str) -> Result<Option<Lsn>> {
    let found = subscription::subscription_info(target, name)
        .await?
        .ok_or_else(|| Error::SubscriptionMissing {
            subscription: name.to_string(),
        })?;
    subscription::origin_progress(target, &found.origin_name()).await
}

/// The source's WAL insert position now, and the position a slot must
/// have confirmed for everything written before it to be applied (past
/// the page the position is on, which a quiet source may never fill).
pub async fn catch_up_goal(source: &Client) -> Result<(Lsn, Lsn)> {
    let goal = wal::insert_lsn(source).await?;
    let geometry = wal::wal_geometry(source).await?;
    Ok((
        goal,
        crate::steps::verify_table::applied_mark(goal, geometry),
    ))
}

/// The least position any of `slots` has confirmed; `None` when one has
/// confirmed nothing.
pub async fn least_confirmed(source: &Client, slots: &[String]) -> Result<Option<Lsn>> {
    wal::least_confirmed(source, slots).await
}

/// The source's WAL insert position.
pub async fn insert_position(source: &Client) -> Result<Lsn> {
    wal::insert_lsn(source).await
}
