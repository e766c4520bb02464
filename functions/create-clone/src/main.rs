//! Lambda `create-clone`: the copy-on-write clone of the shared cluster and its writer instance (`clonesync::steps::clone`).

clonesync::lambda_function!(clonesync::handlers::create_clone);
