//! Lambda `advance-and-enable`: advance the subscription's origin to the clone LSN, then enable it (`clonesync::steps::advance_and_enable`).

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
    Ok(handlers::advance_and_enable(ctx, payload).await?)
}
