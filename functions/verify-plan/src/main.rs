//! Lambda `verify-plan`: the tables a verification covers, after checking the pipeline streams (`clonesync::workflow::verify`).

clonesync::lambda_function!(clonesync::handlers::verify_plan);
