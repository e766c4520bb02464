//! Lambda `prepare-source`: the publication, then the logical slot, on the source (`clonesync::steps::prepare_source`).

clonesync::lambda_function!(clonesync::handlers::prepare_source);
