//! Lambda `verify-report`: the verification's summary and its `TablesDiffering` metric; `Verify.Differs` when every table had to be equal (`clonesync::workflow::verify`).

clonesync::lambda_function!(clonesync::handlers::verify_report);
