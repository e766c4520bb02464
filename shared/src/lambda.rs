//! The Lambda glue, at the top of the library: logging, the AWS cloud
//! built once per instance, the runtime loop, and the errorType mapping.
//! A function's `main.rs` is one line, [`crate::lambda_function!`] naming
//! its body in [`crate::handlers`].

use crate::aws::AwsCloud;
use crate::error::{Error, Result};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

/// A Lambda event's payload.
pub type Payload = Value;

/// What a function's `main` returns.
pub type LambdaError = lambda_runtime::Error;

/// A handler's answer, boxed so every function has one `serve`.
pub type Reply<'a> = Pin<Box<dyn Future<Output = Result<Value>> + Send + 'a>>;

/// The stable name is the errorType, so ASL `Retry`/`Catch` can match it.
impl From<Error> for Diagnostic {
    fn from(error: Error) -> Diagnostic {
        tracing::error!(kind = error.name(), error = %error, "step failed");
        Diagnostic {
            error_type: error.name().to_string(),
            error_message: error.to_string(),
        }
    }
}

/// JSON log lines to CloudWatch (lambda_runtime's subscriber; level from
/// `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG`).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// A function's whole life: logging, the cloud from the environment (a
/// misconfigured function fails its init with `Config.Invalid`), then one
/// `handler` call per event, its error as the errorType.
pub fn serve(handler: for<'a> fn(&'a AwsCloud, Value) -> Reply<'a>) -> Result<(), LambdaError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        init_tracing();
        let cloud = AwsCloud::from_env().await?;
        let cloud = &cloud;
        lambda_runtime::run(lambda_runtime::service_fn(
            move |event: LambdaEvent<Value>| async move {
                handler(cloud, event.payload)
                    .await
                    .map_err(Diagnostic::from)
            },
        ))
        .await
    })
}

/// The `main` of a Lambda function whose body is `$handler` (a function of
/// [`crate::handlers`]): `clonesync::lambda_function!(clonesync::handlers::verify);`
#[macro_export]
macro_rules! lambda_function {
    ($handler:path) => {
        fn handle(
            cloud: &$crate::aws::AwsCloud,
            payload: $crate::lambda::Payload,
        ) -> $crate::lambda::Reply<'_> {
            ::std::boxed::Box::pin($handler(cloud, payload))
        }

        fn main() -> ::std::result::Result<(), $crate::lambda::LambdaError> {
            $crate::lambda::serve(handle)
        }
    };
}
