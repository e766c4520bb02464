//! Lambda `sync-sequences`: every sequence in scope on the target set to the source's next value plus headroom, never backwards (`clonesync::steps::sequences`).

clonesync::lambda_function!(clonesync::handlers::sync_sequences);
