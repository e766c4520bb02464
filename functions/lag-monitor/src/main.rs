//! Lambda `lag-monitor`: on a schedule, every registered pipeline's slot lag, retained WAL and apply lag as Embedded Metric Format lines (`clonesync::monitor`).

use clonesync::handlers;
use clonesync::lambda::{self, Context};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda::init_tracing();
    let ctx = Context::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handle(&ctx, event.payload)
    }))
    .await
}

async fn handle(ctx: &Context, payload: Value) -> Result<Value, Diagnostic> {
    Ok(handlers::lag_monitor(ctx, payload).await?)
}
