//! Lambda `delete-clone`: teardown: delete the clone this pipeline owns (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::delete_clone);
