//! Lambda `record-inventory`: the pipeline's inventory in the registry before setup makes anything (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::record_inventory);
