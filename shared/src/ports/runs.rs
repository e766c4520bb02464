//! The runs' documents: what one state machine execution writes for its
//! later states when it would not fit in Step Functions' 256 KiB state (a
//! verification's table list, which its Distributed Map reads, and each
//! table's verdict). Keys are relative to the run's own prefix, so two runs
//! never share a document.
//!
//! One implementation serves both runs: S3 (`crate::aws::runs::S3Runs`);
//! a local run points it at moto.

use crate::error::Result;
use std::future::Future;

pub trait RunStore: Sync {
    /// Where a document lives, as the state machine's `ItemReader` names it:
    /// the bucket.
    fn bucket(&self) -> &str;

    /// Write a document (a put: twice is once).
    fn put(&self, key: &str, body: Vec<u8>) -> impl Future<Output = Result<()>> + Send;

    /// A document; `None` when there is none under `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
}
