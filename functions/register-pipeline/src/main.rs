//! Lambda `register-pipeline`: record the streaming pipeline for the lag monitor (`clonesync::aws::registry`).

clonesync::lambda_function!(clonesync::handlers::register_pipeline);
