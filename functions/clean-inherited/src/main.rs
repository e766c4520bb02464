//! Lambda `clean-inherited`: drop the slots, publication and subscriptions the clone inherited (`clonesync::steps::clean_inherited`).

clonesync::lambda_function!(clonesync::handlers::clean_inherited);
