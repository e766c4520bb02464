//! Lambda `cleanup`: undo exactly what `created` says this run made, the source slot above all, and the RAM share if this run created it (`clonesync::steps::cleanup`).

clonesync::lambda_function!(clonesync::handlers::cleanup);
