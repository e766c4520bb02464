//! Lambda `clone-gone`: teardown: wait until the clone is gone (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::clone_gone);
