//! What the commands print: the state machine's progress, the streaming
//! figures, the per-table comparison. Never a password or a connection
//! string.

use clonesync::monitor::{MonitorReport, SlotReading, TargetReading};
use clonesync_local::compare::TableState;
use clonesync_local::runtime::{Progress, RunOutcome};
use std::time::{Duration, SystemTime};

pub fn millis(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Bytes with thousands separated, so lag is readable at a glance.
pub fn bytes(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    format!("{out} B")
}

/// A printer for [`Progress`], with times relative to `start`.
pub fn progress(start: SystemTime) -> impl FnMut(&Progress) + Send {
    move |p: &Progress| {
        let offset = |at: &SystemTime| at.duration_since(start).unwrap_or_default().as_secs_f64();
        match p {
            Progress::Entered { state, at } => say!("  {:>7.3}s  -> {state}", offset(at)),
            Progress::Exited { state, at, took } => {
                say!("  {:>7.3}s  ok {state} ({})", offset(at), millis(*took))
            }
            Progress::TaskFailed { state, error } => {
                say!("             !! {state}: {error} (the state machine decides: retry, fall back or clean up)")
            }
        }
    }
}

pub fn outcome(outcome: &RunOutcome) {
    let took = outcome
        .stopped
        .duration_since(outcome.started)
        .unwrap_or_default();
    if outcome.succeeded() {
        say!("  execution SUCCEEDED in {}", millis(took));
    } else {
        say!(
            "  execution {} after {}: {} — {}",
            outcome.status,
            millis(took),
            outcome.error.as_deref().unwrap_or("no error name"),
            outcome.cause.as_deref().unwrap_or("no cause")
        );
    }
}

fn seconds(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.1} s"))
        .unwrap_or_else(|| "-".into())
}

fn optional_bytes(value: Option<u64>) -> String {
    value.map(bytes).unwrap_or_else(|| "-".into())
}

/// The pipeline's slot and subscription in `report`.
pub fn pipeline_figures<'r>(
    report: &'r MonitorReport,
    pipeline: &str,
) -> (Option<&'r SlotReading>, Option<&'r TargetReading>) {
    let slot = report
        .slots()
        .map(|(_, s)| s)
        .find(|s| s.pipeline.as_deref() == Some(pipeline));
    let target = report.targets.iter().find(|t| t.pipeline == pipeline);
    (slot, target)
}

/// One line per reading while streaming: the monitor's figures for the
/// pipeline (the same the lag-monitor function publishes).
pub fn streaming(
    report: &MonitorReport,
    pipeline: &str,
    elapsed: Duration,
    committed: Option<u64>,
) {
    let (slot, target) = pipeline_figures(report, pipeline);
    let writes = committed
        .map(|c| format!("  writes committed {c}"))
        .unwrap_or_default();
    say!(
        "  {:>5}s  lag {:>12}  retained {:>12}  slot {}  worker {}  apply lag {}{writes}",
        elapsed.as_secs(),
        optional_bytes(slot.and_then(|s| s.lag_bytes)),
        optional_bytes(slot.and_then(|s| s.retained_bytes)),
        match slot {
            Some(s) if s.active => "active",
            Some(_) => "INACTIVE",
            None => "MISSING",
        },
        if target.is_some_and(|t| t.apply_worker) {
            "running"
        } else {
            "NOT RUNNING"
        },
        seconds(target.and_then(|t| t.apply_lag_seconds)),
    );
    for error in &report.errors {
        say!(
            "         could not read the {:?}: {} ({})",
            error.side,
            error.message,
            error.error_type
        );
    }
}

/// Everything the monitor read: every logical slot on the source (ours or
/// not), the subscription, what could not be read.
pub fn report(report: &MonitorReport) {
    for (source, slot) in report.slots() {
        let owner = match &slot.pipeline {
            Some(p) => format!("pipeline {p}"),
            None => "NOT clonesync's".into(),
        };
        say!(
            "  slot {:<28} {:<20} {:<9} lag {:>12}  retained {:>12}  wal {}  (source {source})",
            slot.slot,
            owner,
            if slot.active { "active" } else { "INACTIVE" },
            optional_bytes(slot.lag_bytes),
            optional_bytes(slot.retained_bytes),
            slot.wal_status.as_deref().unwrap_or("-"),
        );
    }
    for t in &report.targets {
        say!(
            "  subscription {:<20} {}  apply worker {}  last message {} ago  apply lag {}  apply errors {}  sync errors {}  conflicts {}",
            t.subscription,
            if t.enabled { "enabled" } else { "DISABLED" },
            if t.apply_worker {
                "running"
            } else {
                "NOT RUNNING"
            },
            seconds(t.seconds_since_last_message),
            seconds(t.apply_lag_seconds),
            t.apply_errors
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            t.sync_errors
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            conflicts(t),
        );
        if let Some(queue) = &t.source_queue {
            say!(
                "  schema change queue on the source: {} row(s), {} bytes ({} pruned now: every slot had them)",
                queue.rows,
                queue.bytes,
                queue.pruned
            );
        }
        if let Some(tables) = t.tables_not_replicated.as_ref().filter(|l| !l.is_empty()) {
            say!(
                "  NOT REPLICATED (unlogged; PostgreSQL does not replicate them, they stay empty on the copy): {}",
                tables.join(", ")
            );
        }
        if let Some(tables) = t.tables_unwritable.as_ref().filter(|l| !l.is_empty()) {
            say!(
                "  UPDATE AND DELETE FAIL ON THE SOURCE (published, nothing identifies their rows to the publication; give each a primary key over ordinary columns, or leave it out of the scope): {}",
                tables.join("; ")
            );
        }
        if let Some(tables) = t.tables_not_published.as_ref().filter(|l| !l.is_empty()) {
            say!(
                "  NOT PUBLISHED (in scope, in no apply group's publication: the copy does not receive them until a refresh gives them a group): {}",
                tables.join(", ")
            );
        }
        if let Some(in_flight) = &t.schema_changes_in_flight {
            say!(
                "  schema changes captured on the source, not yet on the copy: {}{}",
                in_flight.commands,
                in_flight
                    .oldest_seconds
                    .map(|s| format!(" (the oldest captured {s:.0} s ago)"))
                    .unwrap_or_default()
            );
        }
        if let Some((sequence, headroom)) = &t.smallest_sequence_headroom {
            say!(
                "  sequences: smallest headroom {headroom} increment(s), {sequence}{}",
                if *headroom <= 0 {
                    " (behind the source: run `clonesync sequences` before writing to the copy)"
                } else {
                    ""
                }
            );
        }
    }
    for error in &report.errors {
        say!(
            "  could not read the {:?} of {}: {} ({})",
            error.side,
            error.pipeline,
            error.message,
            error.error_type
        );
    }
    say!(
        "  read with {} connections in {} ms",
        report.connections,
        report.took_ms
    );
}

pub fn comparison(states: &[TableState], differences: &[(TableState, TableState)]) {
    say!(
        "  {:<44} {:>10} {:>10}  content",
        "table",
        "source",
        "target"
    );
    for state in states {
        let differs = differences.iter().find(|(a, _)| a.table == state.table);
        let (target_rows, verdict) = match differs {
            Some((_, b)) => (b.rows, "DIFFERS"),
            None => (state.rows, "equal"),
        };
        say!(
            "  {:<44} {:>10} {:>10}  {verdict}",
            state.table,
            state.rows,
            target_rows
        );
    }
}

/// The conflict counters by kind, only those above zero; `-` where the
/// target's version counts none (before PostgreSQL 18).
fn conflicts(t: &clonesync::monitor::TargetReading) -> String {
    match &t.conflicts {
        None => "-".into(),
        Some(kinds) => {
            let counted: Vec<String> = kinds
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            if counted.is_empty() {
                "0".into()
            } else {
                format!(
                    "{} ({})",
                    t.conflicts_total().unwrap_or(0),
                    counted.join(", ")
                )
            }
        }
    }
}

/// A refresh: the tables it added, the ones it could not, and the schema
/// changes the copy could not apply (each by its queue id and command).
pub fn refresh(report: &clonesync::workflow::schema::PipelineRefresh) {
    for (database, t) in &report.triples {
        if let Some(why) = &t.skipped {
            say!("  refresh {} ({database}): skipped, {why}", t.subscription);
        }
        if !t.added.is_empty() {
            say!(
                "  refresh {} ({database}): added {} (being copied)",
                t.subscription,
                t.added.join(", ")
            );
        }
        if !t.created_on_target.is_empty() {
            say!(
                "  created on the copy from the source's definition ({database}): {}",
                t.created_on_target.join(", ")
            );
        }
        if !t.emptied.is_empty() {
            say!(
                "  stale rows removed before the copy ({database}): {}",
                t.emptied.join(", ")
            );
        }
        if !t.constraints_held_back.is_empty() {
            say!(
                "  NOT VALID constraints held back while their tables are copied ({database}): {}",
                t.constraints_held_back.join(", ")
            );
        }
        if !t.constraints_restored.is_empty() {
            say!(
                "  constraints added back after their tables' copy ({database}): {}",
                t.constraints_restored.join(", ")
            );
        }
        if !t.waiting_for_stream.is_empty() {
            say!(
                "  waiting for their schema changes to reach the copy ({database}): {}",
                t.waiting_for_stream.join(", ")
            );
        }
        if !t.syncing.is_empty() {
            say!("  still copying: {}", t.syncing.join(", "));
        }
        if !t.missing_on_target.is_empty() {
            say!(
                "  NEW TABLES MISSING ON THE COPY ({database}): {} (published, but not created on the target; not refreshed)",
                t.missing_on_target.join(", ")
            );
        }
        for (table, why) in &t.not_created {
            say!("    {table} could not be made from the source's definition: {why}");
        }
    }
    for (database, summary) in &report.schema_changes {
        say!(
            "  schema changes ({database}): {} applied, {} out of scope, {} pending",
            summary.applied,
            summary.out_of_scope,
            summary.pending_total
        );
        for change in &summary.pending {
            say!(
                "    PENDING #{} {}: {} [{}]",
                change.id,
                change.command_tag,
                change.detail,
                change.command.replace('\n', " ")
            );
        }
        let unlisted = summary.pending_total - summary.pending.len() as i64;
        if unlisted > 0 {
            say!("    ... and {unlisted} more (clonesync.ddl_applied on the copy lists them all)");
        }
    }
}

/// The drift report, one line per difference.
pub fn drift(report: &clonesync::workflow::schema::PipelineDrift) {
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
    for (database, differences) in &report.databases {
        if differences.is_empty() {
            say!("  {database}: every table in scope has the same shape on both sides");
        }
        for d in differences {
            say!(
                "  DRIFT {database} {} {}: source {} | target {}",
                d.table,
                d.what,
                show(&d.source),
                show(&d.target)
            );
        }
    }
}

/// `clonesync verify`: one line per table, then the rows that differ.
pub fn verdicts(verdicts: &[clonesync::steps::verify_table::TableVerdict], took: Duration) {
    use clonesync::steps::verify_table::Verdict;
    for v in verdicts {
        let word = match v.verdict {
            Verdict::Equal => "equal",
            Verdict::Differs => "DIFFERS",
            Verdict::Unsettled => "UNSETTLED",
        };
        let how = if v.key.is_empty() {
            "compared whole".to_string()
        } else {
            format!("{} chunk(s), {} re-checked", v.chunks, v.rechecked)
        };
        say!(
            "  {word:9} {}: {} ({} rows, {how}, {})",
            v.database,
            v.table,
            v.source_rows,
            millis(Duration::from_millis(v.took_ms))
        );
        if let Some(detail) = &v.detail {
            say!("            {detail}");
        }
        for row in &v.differing_rows {
            say!(
                "            row ({}) = ({}): {:?}",
                v.key.join(", "),
                row.key.join(", "),
                row.state
            );
        }
        if v.differing_total as usize > v.differing_rows.len() {
            say!("            ... {} row(s) differ in all", v.differing_total);
        }
        for key in &v.unsettled_keys {
            say!(
                "            unsettled ({}) = ({})",
                v.key.join(", "),
                key.join(", ")
            );
        }
    }
    let equal = verdicts
        .iter()
        .filter(|v| v.verdict == Verdict::Equal)
        .count();
    say!(
        "verify: {equal} of {} table(s) equal in {}",
        verdicts.len(),
        millis(took)
    );
}

/// `clonesync sequences`: each sequence's move.
pub fn sequences(report: &clonesync::workflow::switchover::SequencesReport) {
    for (database, synced) in &report.databases {
        for s in synced {
            match (s.target_before, s.target_next) {
                (Some(before), Some(next)) if s.moved => say!(
                    "  {database}: {} source next {} -> target next {next} (was {before}){}",
                    s.sequence,
                    s.source_next,
                    if s.clamped {
                        ", clamped at its limit"
                    } else {
                        ""
                    }
                ),
                (Some(before), _) => say!(
                    "  {database}: {} source next {}; target next {before} is ahead already",
                    s.sequence,
                    s.source_next
                ),
                (None, _) => say!("  {database}: {} MISSING on the target", s.sequence),
            }
        }
    }
    say!("sequences: {} moved", report.moved());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_readable() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1234567), "1 234 567 B");
        assert_eq!(millis(Duration::from_millis(812)), "812 ms");
        assert_eq!(millis(Duration::from_millis(12_340)), "12.3 s");
    }
}
