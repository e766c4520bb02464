//! Lambda `drop-databases`: teardown: subscription, slot and publication (`clonesync::workflow::lifecycle`).

clonesync::lambda_function!(clonesync::handlers::drop_databases);
