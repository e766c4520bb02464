//! [`clonesync_local::workload`] for tests: a load that stalls or fails
//! is a panic.

use clonesync::pg::Endpoint;
use clonesync_local::workload as shared;
pub use clonesync_local::workload::WorkloadStats;
use std::time::Duration;
use tokio_postgres::Client;

pub async fn create_schema(client: &Client) {
    shared::create_schema(client).await.expect("create schema");
}

pub struct Workload(shared::Workload);

impl Workload {
    pub fn start(endpoint: Endpoint, workers: usize, seed: u64, pause: Duration) -> Workload {
        Workload(shared::Workload::start(endpoint, workers, seed, pause))
    }

    pub fn committed(&self) -> u64 {
        self.0.committed()
    }

    pub async fn wait_for_more(&self, more: u64) -> u64 {
        self.0.wait_for_more(more).await.expect("load")
    }

    pub async fn stop(self) -> WorkloadStats {
        self.0.stop().await.expect("load worker")
    }
}
