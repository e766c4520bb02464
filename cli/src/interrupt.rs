//! Ctrl-C while clonesync holds a slot, a clone and moto: noted, not
//! obeyed at once, so the work in hand finishes and its teardown runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// From now on, Ctrl-C sets the returned flag (and prints `message` once)
/// instead of ending the process.
pub fn on_ctrl_c(message: &'static str) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if !set.swap(true, Ordering::Relaxed) {
                println!("{message}");
            }
        }
    });
    flag
}
