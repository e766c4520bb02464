//! Writing to the terminal without ever panicking: `println!` panics when
//! stdout is closed (`clonesync local up | head`). A line that cannot be
//! written is dropped, and a closed stdout counts as an interruption, like
//! Ctrl-C: the step in hand finishes, then the run cleans up.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// One line on stdout.
pub fn line(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Text on stdout without a newline.
pub fn text(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if write!(out, "{text}").and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// One line on stderr (a failure there is nothing to report to).
pub fn error_line(text: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Whether a write to stdout has failed.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// `println!` that never panics.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::out::line(format_args!($($arg)*)) };
}

/// `print!` that never panics.
#[macro_export]
macro_rules! say_more {
    ($($arg:tt)*) => { $crate::out::text(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! warn_user {
    ($($arg:tt)*) => { $crate::out::error_line(format_args!($($arg)*)) };
}
