//! The test harness: throwaway PostgreSQL servers, a realistic schema with a
//! concurrent write load, and table-by-table comparison by content.
//!
//! Servers come from the machine's PostgreSQL binaries (`PG_BIN`, else
//! `pg_config --bindir`), live in a temporary directory, listen on a free
//! port, and are stopped and removed when their fixture is dropped — also
//! when the test panics.

pub mod apply_bench;
pub mod aws_mock;
pub mod bench;
pub mod capture;
pub mod compare;
pub mod fixture;
pub mod groups_bench;
pub mod moto;
pub mod pipeline;
pub mod runtime_api;
pub mod tls;
pub mod workload;

pub use compare::{compare_tables, tables_in, wait_for_marker, TableState};
pub use fixture::{TestEnv, TestServer};
pub use workload::{create_schema, Workload, WorkloadStats};
