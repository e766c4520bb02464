//! Lambda `verify`: apply worker running, source slot active (`clonesync::steps::verify`).

clonesync::lambda_function!(clonesync::handlers::verify);
