//! Lambda `lag-monitor`: on a schedule, every registered pipeline's slot lag, retained WAL and apply lag as Embedded Metric Format lines (`clonesync::monitor`).

clonesync::lambda_function!(clonesync::handlers::lag_monitor);
