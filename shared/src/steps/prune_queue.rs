//! Keep the source small: remove the schema change queue rows every
//! logical slot of the database has confirmed, and measure what is left.
//!
//! The lag monitor runs it on each source database of each pipeline, so a
//! queue that only grew until teardown (every captured command with its
//! objects' full definitions) stays as small as the slowest slot allows;
//! its size is the `SchemaChangeQueueRows` / `SchemaChangeQueueBytes`
//! metrics.
//!
//! Exact by watermarks (`clonesync.ddl_queue_prune` in `ddl_capture.sql`):
//! a row goes only when its transaction had ended before a watermark whose
//! WAL position every logical slot of the database (clonesync's or not)
//! has confirmed; the newest row always stays (the queue continues after
//! its id). The deletes reach every copy, whose pending commands keep
//! their text in `clonesync.ddl_applied`.
//!
//! Idempotent: a second run right after the first finds nothing more to
//! remove (it may take one more watermark, at most 100 wait). Two runs at
//! once: the second only measures. A database without the capture, or a
//! copy (its capture disabled), is measured only or not at all; a capture
//! installed before pruning existed is measured until its next setup
//! brings the function. Leaves behind: at most 100 watermark rows.

use crate::error::Result;
use crate::pg::ddl::{self, QueueSize};
use tokio_postgres::Client;

/// Prune the queue of the database `source` is connected to; `None`
/// where there is no queue.
pub async fn run(source: &Client) -> Result<Option<QueueSize>> {
    let size = ddl::prune_queue(source).await?;
    if let Some(size) = size.filter(|s| s.pruned > 0) {
        tracing::info!(
            pruned = size.pruned,
            rows = size.rows,
            bytes = size.bytes,
            "schema change queue pruned"
        );
    }
    Ok(size)
}
