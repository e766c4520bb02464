//! Ctrl-C, SIGTERM, SIGHUP or a closed stdout while clonesync holds a
//! slot, a clone and moto: noted, not obeyed at once, so the work in hand
//! finishes and its teardown runs. (A SIGKILL cannot be caught; what it
//! leaves is found again by `local status` and removed by `local down`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// From now on, Ctrl-C (SIGINT), SIGTERM, SIGHUP and a failed write to
/// stdout set the returned flag (and print `message` once, after what
/// came) instead of ending the process.
pub fn on_ctrl_c(message: &'static str) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let note = {
        let flag = flag.clone();
        move |what: &str| {
            if !flag.swap(true, Ordering::Relaxed) {
                say!("{what}: {message}");
                if crate::out::stdout_closed() {
                    warn_user!("{what}: {message}");
                }
            }
        }
    };
    for (kind, what) in [
        (SignalKind::interrupt(), "Ctrl-C"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ] {
        // A signal that cannot be watched is left at its default.
        let Ok(mut stream) = signal(kind) else {
            continue;
        };
        let note = note.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                note(what);
            }
        });
    }
    tokio::spawn(async move {
        loop {
            if crate::out::stdout_closed() {
                note("stdout closed");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    flag
}
