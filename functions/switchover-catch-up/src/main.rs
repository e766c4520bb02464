//! Lambda `switchover-catch-up`: wait for zero lag: every slot confirmed the source's position, else `Switchover.Lagging` (`clonesync::workflow::switchover`).

clonesync::lambda_function!(clonesync::handlers::switchover_catch_up);
