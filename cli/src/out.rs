//! Writing to the terminal without ever panicking: `println!` panics when
//! stdout is closed (`clonesync local up | head`). A line that cannot be
//! written is dropped, and a closed stdout counts as an interruption, like
//! Ctrl-C: the step in hand finishes, then the run cleans up.
//!
//! Everything printed passes through [`terminal_safe`]: names, error
//! messages and statement texts come from databases any role can write to
//! (a table named with an escape sequence, a forged queue row), and must
//! not move the cursor, recolour, retitle or fake a line on the operator's
//! terminal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// `text` with every control character (C0 but the tab, DEL, C1: ESC, CR,
/// newline among them) and every bidirectional override written as an
/// escape (`\n`, `\u{1b}`), so one call prints exactly one line.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    std::borrow::Cow::Owned(safe)
}

/// One line on stdout.
pub fn line(text: std::fmt::Arguments<'_>) {
    let text = terminal_safe(&text.to_string()).into_owned();
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// One line on stderr (a failure there is nothing to report to).
pub fn error_line(text: std::fmt::Arguments<'_>) {
    let text = terminal_safe(&text.to_string()).into_owned();
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Text of clonesync's own on stdout, as it is (the usage).
pub fn own_text(text: &str) {
    let mut out = std::io::stdout().lock();
    if write!(out, "{text}").and_then(|_| out.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Text of clonesync's own on stderr, as it is (the usage: several
/// lines, nothing from a database).
pub fn own_text_error(text: &str) {
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

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! warn_user {
    ($($arg:tt)*) => { $crate::out::error_line(format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn control_characters_and_overrides_are_escaped() {
        assert_eq!(terminal_safe("public.orders\tx"), "public.orders\tx");
        assert_eq!(
            terminal_safe("a\u{1b}[2J\u{1b}]0;owned\u{7}b"),
            "a\\u{1b}[2J\\u{1b}]0;owned\\u{7}b"
        );
        assert_eq!(terminal_safe("x\ny\rz"), "x\\ny\\rz");
        assert_eq!(terminal_safe("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert_eq!(terminal_safe("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(terminal_safe("Größe €"), "Größe €");
    }
}
