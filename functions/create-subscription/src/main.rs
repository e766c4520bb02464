//! Lambda `create-subscription`: the disabled subscription on the clone, attached to the source slot (`clonesync::steps::create_subscription`).

clonesync::lambda_function!(clonesync::handlers::create_subscription);
