//! Lambda `deregister-pipeline`: teardown: remove the pipeline's waits and record, last (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::deregister_pipeline);
