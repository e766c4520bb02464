//! Lambda `refresh-tables`: on the monitor's schedule and on demand, every new table of a publication added to its subscription (copied), and the schema changes a target could not apply (`clonesync::workflow::schema`).

clonesync::lambda_function!(clonesync::handlers::refresh_tables);
