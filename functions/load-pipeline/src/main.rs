//! Lambda `load-pipeline`: teardown: read the inventory, refuse what must not go on (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::load_pipeline);
