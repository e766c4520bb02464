//! Lambda `advance-and-enable`: advance the subscription's origin to the clone LSN, then enable it (`clonesync::steps::advance_and_enable`).

clonesync::lambda_function!(clonesync::handlers::advance_and_enable);
