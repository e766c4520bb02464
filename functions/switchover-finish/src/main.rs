//! Lambda `switchover-finish`: the subscription disabled; optionally subscription, slot and publication dropped and the pipeline deregistered, the clone kept (`clonesync::workflow::switchover`).

clonesync::lambda_function!(clonesync::handlers::switchover_finish);
