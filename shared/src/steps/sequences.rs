//! Sync sequences for a switchover: every sequence in scope on the target
//! (identity and `serial` columns included) is set to the source's next
//! value plus headroom, so rows inserted on the target never take a key
//! the source has used (or will use within the headroom, while it still
//! writes).
//!
//! Never moves a sequence backwards: one already at or past its goal is
//! left alone, so running it twice is running it once. The headroom is
//! bounded per sequence to half of what the source has left before the
//! sequence's limit (and said so): the copy keeps at least as many values
//! as it skipped, and a huge `--headroom` can never put it at its limit,
//! where its next insert would fail and no later run could move it back. A sequence the
//! target lacks is reported, not made. Leaves behind: the target's
//! sequences moved forward.

use crate::error::{Error, Result};
use crate::pg::sequences::{self, SequencePosition};
use crate::pg::TableName;
use crate::pipeline::Scope;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// How far ahead of the source the target's sequences are put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Headroom {
    /// So many values (in the sequence's direction).
    Values(i64),
    /// So many of the sequence's own increments.
    Increments(i64),
}

impl Default for Headroom {
    fn default() -> Self {
        Headroom::Values(1_000_000)
    }
}

impl Headroom {
    pub fn check(self) -> Result<Headroom> {
        let n = match self {
            Headroom::Values(n) | Headroom::Increments(n) => n,
        };
        if n < 0 {
            return Err(Error::invalid(format!(
                "sequence headroom {n} is negative: a sequence is never moved backwards"
            )));
        }
        Ok(self)
    }

    /// The distance, in values, for a sequence moving by `increment`.
    fn values_for(self, increment: i64) -> i64 {
        let magnitude = match self {
            Headroom::Values(n) => n,
            Headroom::Increments(n) => n.saturating_mul(increment.saturating_abs()),
        };
        if increment < 0 {
            -magnitude
        } else {
            magnitude
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceSync {
    pub sequence: String,
    pub source_next: i64,
    /// `None`: the target has no such sequence.
    pub target_before: Option<i64>,
    pub target_next: Option<i64>,
    pub moved: bool,
    /// The goal was past the sequence's limit.
    pub clamped: bool,
}

/// The value to set a target sequence to: `wanted`, but no further from
/// the source's `source_next` than half the way to the limit in the
/// sequence's direction.
fn bounded_goal(source_next: i64, wanted: i64, target: &SequencePosition) -> i64 {
    let (source_next, wanted) = (i128::from(source_next), i128::from(wanted));
    let goal = if target.increment < 0 {
        let room = (source_next - i128::from(target.min)).max(0);
        wanted.max(source_next - room / 2)
    } else {
        let room = (i128::from(target.max) - source_next).max(0);
        wanted.min(source_next + room / 2)
    };
    // In range by construction; the clamp only guards a source already
    // past the target's limits.
    goal.clamp(i128::from(target.min), i128::from(target.max)) as i64
}

/// How many more `nextval` calls the source can make before it hands out
/// a value the target's sequence will hand out too (negative: it already
/// has).
pub fn headroom_increments(source: &SequencePosition, target: &SequencePosition) -> i64 {
    let step = source.increment.max(1);
    if source.increment < 0 {
        (source.next - target.next) / source.increment.saturating_abs()
    } else {
        (target.next - source.next) / step
    }
}

/// The smallest headroom of the sequences in `scope`, with the sequence;
/// `None` when there is none.
pub async fn smallest_headroom(
    source: &Client,
    target: &Client,
    scope: &Scope,
) -> Result<Option<(String, i64)>> {
    let on_source = sequences::in_scope(source, scope).await?;
    let names: Vec<TableName> = on_source.iter().map(|s| s.sequence.clone()).collect();
    let on_target = sequences::positions(target, &names).await?;
    Ok(on_source
        .iter()
        .filter_map(|s| {
            on_target
                .iter()
                .find(|t| t.sequence == s.sequence)
                .map(|t| (s.sequence.to_string(), headroom_increments(s, t)))
        })
        .min_by_key(|(_, h)| *h))
}

pub async fn run(
    source: &Client,
    target: &Client,
    scope: &Scope,
    headroom: Headroom,
) -> Result<Vec<SequenceSync>> {
    let headroom = headroom.check()?;
    let on_source = sequences::in_scope(source, scope).await?;
    let names: Vec<TableName> = on_source.iter().map(|s| s.sequence.clone()).collect();
    let on_target = sequences::positions(target, &names).await?;
    let mut report = Vec::new();
    for source_position in &on_source {
        let name = source_position.sequence.to_string();
        let Some(target_position) = on_target
            .iter()
            .find(|t| t.sequence == source_position.sequence)
        else {
            tracing::warn!(sequence = %name, "sequence missing on the target: not synced");
            report.push(SequenceSync {
                sequence: name,
                source_next: source_position.next,
                target_before: None,
                target_next: None,
                moved: false,
                clamped: false,
            });
            continue;
        };
        let increment = target_position.increment;
        let wanted = source_position
            .next
            .saturating_add(headroom.values_for(increment));
        let goal = bounded_goal(source_position.next, wanted, target_position);
        let ahead = if increment < 0 {
            target_position.next <= goal
        } else {
            target_position.next >= goal
        };
        let moved = !ahead;
        if moved {
            sequences::set_next(target, target_position, goal).await?;
        }
        report.push(SequenceSync {
            sequence: name,
            source_next: source_position.next,
            target_before: Some(target_position.next),
            target_next: Some(if moved { goal } else { target_position.next }),
            moved,
            clamped: goal != wanted,
        });
    }
    tracing::info!(
        sequences = report.len(),
        moved = report.iter().filter(|s| s.moved).count(),
        "sequences synced"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(next: i64, increment: i64) -> SequencePosition {
        SequencePosition {
            sequence: TableName::new("public", "s").unwrap(),
            next,
            increment,
            min: i64::MIN,
            max: i64::MAX,
        }
    }

    fn limited(next: i64, increment: i64, min: i64, max: i64) -> SequencePosition {
        SequencePosition {
            min,
            max,
            ..at(next, increment)
        }
    }

    #[test]
    fn the_goal_never_reaches_the_limit_and_leaves_the_copy_half_the_room() {
        let seq = limited(1, 1, 1, i64::MAX);
        let goal = bounded_goal(101, i64::MAX, &seq);
        assert!(goal < i64::MAX && goal > 101);
        assert!(
            i64::MAX - goal >= goal - 101,
            "the copy keeps as much as it skipped"
        );
        // An ordinary headroom is untouched.
        assert_eq!(bounded_goal(101, 1_000_101, &seq), 1_000_101);
        // smallint: 32767 - 101 = 32666 left, half of it at most.
        let small = limited(1, 1, 1, 32767);
        assert_eq!(bounded_goal(101, 1_000_101, &small), 101 + 16333);
        // Descending.
        let down = limited(-1, -1, i64::MIN, -1);
        let goal = bounded_goal(-101, i64::MIN, &down);
        assert!(goal > i64::MIN && goal < -101);
        // A source at its limit leaves nothing to skip.
        assert_eq!(bounded_goal(32767, 1_000_000, &small), 32767);
    }

    #[test]
    fn headroom_counts_increments_in_the_sequence_direction() {
        assert_eq!(headroom_increments(&at(100, 1), &at(1100, 1)), 1000);
        assert_eq!(headroom_increments(&at(100, 10), &at(1100, 10)), 100);
        assert_eq!(headroom_increments(&at(-100, -1), &at(-1100, -1)), 1000);
        assert_eq!(headroom_increments(&at(500, 1), &at(100, 1)), -400);
        assert_eq!(Headroom::Increments(5).values_for(-3), -15);
        assert_eq!(Headroom::Values(7).values_for(2), 7);
        assert!(Headroom::Values(-1).check().is_err());
    }
}
