//! Lambda `switchover-start`: the switchover's checks and the source's quiet marker (`clonesync::workflow::switchover`).

clonesync::lambda_function!(clonesync::handlers::switchover_start);
