//! Lambda `switchover-quiet`: no transaction wrote on the source since the quiet marker, else `Switchover.SourceWriting` (`clonesync::workflow::switchover`).

clonesync::lambda_function!(clonesync::handlers::switchover_quiet);
