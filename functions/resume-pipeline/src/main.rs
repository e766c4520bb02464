//! Lambda `resume-pipeline`: enable a paused pipeline's subscription again (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::resume_pipeline);
