//! Lambda `ram-events`: RAM share events: confirm with the API, then wake the step waiting for that share.

clonesync::lambda_function!(clonesync::handlers::ram_events);
