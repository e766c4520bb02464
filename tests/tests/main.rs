//! Every integration test of the library, the adapters and the state
//! machines, in one binary: a module per area (the file of the same name
//! says what it proves). nextest runs each test in its own process, so
//! the modules share nothing but the build.

mod aws_assume_role;
mod aws_events;
mod aws_moto;
mod aws_ram;
mod aws_rds;
mod bad_input;
mod canary;
mod clone_target;
mod contract;
mod databases;
mod e2e;
mod errors;
mod fixture;
mod handoff;
mod iam;
mod idempotency;
mod isolation;
mod lambda_boundary;
mod layers;
mod lifecycle;
mod monitor;
mod schema_changes;
mod secrets;
mod sfn_limits;
mod teardown;
mod tls;
mod verify;
mod versions;
