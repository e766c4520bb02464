//! Lambda `rds-events`: RDS cluster and instance events: confirm `available` with Describe, then wake the step waiting for that clone.

clonesync::lambda_function!(clonesync::handlers::rds_events);
