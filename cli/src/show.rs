//! What the commands print: the state machine's progress, the streaming
//! figures, the per-table comparison. Never a password or a connection
//! string.

use clonesync::local::compare::TableState;
use clonesync::local::runtime::{Progress, RunOutcome};
use clonesync::steps::verify::Verification;
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
            Progress::Entered { state, at } => println!("  {:>7.3}s  -> {state}", offset(at)),
            Progress::Exited { state, at, took } => {
                println!("  {:>7.3}s  ok {state} ({})", offset(at), millis(*took))
            }
            Progress::TaskFailed { state, error } => {
                println!("             !! {state}: {error} (the state machine decides: retry, fall back or clean up)")
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
        println!("  execution SUCCEEDED in {}", millis(took));
    } else {
        println!(
            "  execution {} after {}: {} — {}",
            outcome.status,
            millis(took),
            outcome.error.as_deref().unwrap_or("no error name"),
            outcome.cause.as_deref().unwrap_or("no cause")
        );
    }
}

pub fn streaming(v: &Verification, elapsed: Duration, committed: Option<u64>) {
    let writes = committed
        .map(|c| format!("  writes committed {c}"))
        .unwrap_or_default();
    println!(
        "  {:>5}s  lag {:>12}  slot {}  apply worker {}  apply errors {}{writes}",
        elapsed.as_secs(),
        bytes(v.lag_bytes),
        if v.slot_active { "active" } else { "INACTIVE" },
        if v.apply_worker_pid > 0 {
            format!("pid {}", v.apply_worker_pid)
        } else {
            "NOT RUNNING".into()
        },
        v.apply_errors,
    );
}

pub fn comparison(states: &[TableState], differences: &[(TableState, TableState)]) {
    println!(
        "  {:<44} {:>10} {:>10}  content",
        "table", "source", "target"
    );
    for state in states {
        let differs = differences.iter().find(|(a, _)| a.table == state.table);
        let (target_rows, verdict) = match differs {
            Some((_, b)) => (b.rows, "DIFFERS"),
            None => (state.rows, "equal"),
        };
        println!(
            "  {:<44} {:>10} {:>10}  {verdict}",
            state.table, state.rows, target_rows
        );
    }
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
