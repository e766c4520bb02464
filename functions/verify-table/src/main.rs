//! Lambda `verify-table`: one table compared by content, source against target, while writes go on: key ranges hashed on both sides, re-checked past a source LSN, bisected down to the rows that differ (`clonesync::steps::verify_table`).

clonesync::lambda_function!(clonesync::handlers::verify_table);
