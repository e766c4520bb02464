//! Lambda `preflight`: every check on the source and the control plane, all failures at once (`clonesync::steps::preflight`).

clonesync::lambda_function!(clonesync::handlers::preflight);
