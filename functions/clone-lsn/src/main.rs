//! Lambda `clone-lsn`: the clone's `aurora_volume_logical_start_lsn()`, checked against the slot and the source (`clonesync::steps::clone_lsn`).

clonesync::lambda_function!(clonesync::handlers::clone_lsn);
