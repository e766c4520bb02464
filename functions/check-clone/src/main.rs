//! Lambda `check-clone`: whether the clone and its writer are available; with a task token, wait for it (store the token, complete at once if ready).

clonesync::lambda_function!(clonesync::handlers::check_clone);
