//! Lambda `pause-pipeline`: disable a pipeline's subscription, keep its slot (target maintenance) (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::pause_pipeline);
