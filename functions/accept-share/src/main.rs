//! Lambda `accept-share`: accept the RAM invitation for the share; with a task token, wait for it (store the token, complete at once if ready).

clonesync::lambda_function!(clonesync::handlers::accept_share);
