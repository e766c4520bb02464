//! Lambda `drift-report`: table shapes (columns, types, nullability, defaults, primary key, indexes) compared between source and target, differences by name (`clonesync::steps::drift`).

clonesync::lambda_function!(clonesync::handlers::drift_report);
