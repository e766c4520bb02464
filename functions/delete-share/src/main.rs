//! Lambda `delete-share`: teardown: delete the RAM share when no other pipeline uses it (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::delete_share);
