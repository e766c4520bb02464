//! The Lambda Invoke API, served in-process for moto's Step Functions
//! engine: `POST /2015-03-31/functions/{name}/invocations` runs the
//! function's handler ([`clonesync::handlers::dispatch`]) on the local cloud and
//! answers as Lambda does — the output as the body, or a function error
//! (`X-Amz-Function-Error: Unhandled`, body `{"errorType", "errorMessage"}`)
//! whose errorType the ASL's Retry and Catch match.
//!
//! It answers only connections from processes of this process's own OS
//! account ([`crate::peer::same_account`]): another local account can
//! neither run a handler nor make one send a password anywhere.
//!
//! [`Faults`] lets a test make a function fail before it runs (once, or
//! every time) and make event delivery drop or duplicate events.

use crate::cloud::LocalCloud;
use bytes::Bytes;
use clonesync::error::{Error, Result};
use clonesync::handlers;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// A function made to fail before it runs.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Package name (`functions/<name>`).
    pub function: String,
    /// The errorType to answer with: one of the stable error names.
    pub error_type: String,
    /// How many invocations fail; `None`: all of them.
    pub times: Option<u32>,
}

/// How the local cloud's events reach the event handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    #[default]
    Once,
    /// Every event delivered twice (EventBridge delivers at least once).
    Twice,
    /// Events lost: only the polling fallback can finish the waits.
    Never,
}

/// One invocation as the endpoint saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub function: String,
    /// `None` on success, else the errorType answered.
    pub error_type: Option<String>,
    /// True when a [`Fault`] answered instead of the handler.
    pub injected: bool,
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
    delivery: Mutex<Delivery>,
    log: Mutex<Vec<Invocation>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Faults {
    pub fn add(&self, fault: Fault) {
        locked(&self.rules).push(fault);
    }

    /// Remove every fault still set.
    pub fn clear(&self) {
        locked(&self.rules).clear();
    }

    pub fn set_delivery(&self, delivery: Delivery) {
        *locked(&self.delivery) = delivery;
    }

    pub fn delivery(&self) -> Delivery {
        *locked(&self.delivery)
    }

    /// Every invocation so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        locked(&self.log).clone()
    }

    pub(crate) fn record(&self, invocation: Invocation) {
        locked(&self.log).push(invocation);
    }

    /// The errorType to fail this invocation of `function` with, if any.
    fn take(&self, function: &str) -> Option<String> {
        let mut rules = locked(&self.rules);
        let rule = rules
            .iter_mut()
            .find(|r| r.function == function && r.times != Some(0))?;
        if let Some(times) = rule.times.as_mut() {
            *times -= 1;
        }
        Some(rule.error_type.clone())
    }
}

/// Percent-decoding of a path segment (botocore escapes the `:` of ARNs).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(status: StatusCode, headers: &[(&str, &str)], body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn function_error(error_type: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message});
    respond(
        StatusCode::OK,
        &[
            ("content-type", "application/json"),
            ("x-amz-function-error", "Unhandled"),
        ],
        body.to_string(),
    )
}

/// A request of moto's engine to another service than Lambda (the
/// Distributed Map's `ItemReader` reading S3): moto sends every AWS call
/// of its engine to `localhost:$MOTO_PORT`, this endpoint, so it goes on to
/// moto itself, as it would go to S3 on AWS.
async fn pass_to_moto(moto_port: u16, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        respond(
            StatusCode::BAD_GATEWAY,
            &[("content-type", "text/plain")],
            format!("the local endpoint could not pass the request to moto ({what}): {e}"),
        )
    };
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return failed("request body", &e),
    };
    let stream = match tokio::net::TcpStream::connect(("127.0.0.1", moto_port)).await {
        Ok(stream) => stream,
        Err(e) => return failed("connect", &e),
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return failed("handshake", &e),
        };
    tokio::spawn(connection);
    let answer = match sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(answer) => answer,
        Err(e) => return failed("send", &e),
    };
    let (parts, body) = answer.into_parts();
    match body.collect().await {
        Ok(body) => Response::from_parts(parts, Full::new(body.to_bytes())),
        Err(e) => failed("response body", &e),
    }
}

async fn invoke(
    cloud: Arc<LocalCloud>,
    faults: Arc<Faults>,
    moto_port: Option<u16>,
    request: Request<Incoming>,
) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    if let (Some(port), false) = (moto_port, path.starts_with("/2015-03-31/functions/")) {
        return Ok(pass_to_moto(port, request).await);
    }
    let name = path
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(percent_decode);
    let Some(function) = name.as_deref().and_then(handlers::function_of) else {
        let body =
            serde_json::json!({"Type": "User", "message": format!("Function not found: {path}")});
        return Ok(respond(
            StatusCode::NOT_FOUND,
            &[("x-amzn-errortype", "ResourceNotFoundException")],
            body.to_string(),
        ));
    };
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return Ok(respond(
                StatusCode::BAD_REQUEST,
                &[("x-amzn-errortype", "InvalidRequestContentException")],
                format!("{{\"message\":\"{e}\"}}"),
            ))
        }
    };
    if let Some(error_type) = faults.take(function) {
        tracing::warn!(function, error_type = %error_type, "injected failure");
        faults.record(Invocation {
            function: function.to_string(),
            error_type: Some(error_type.clone()),
            injected: true,
        });
        return Ok(function_error(&error_type, "injected by the local run"));
    }
    let payload: serde_json::Value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(payload) => payload,
            Err(e) => {
                let error = Error::invalid(format!("payload is not JSON: {e}"));
                return Ok(function_error(error.name(), &error.to_string()));
            }
        }
    };
    let task_token = payload
        .get("task_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    let result =
        crate::iam::as_function(function, handlers::dispatch(&*cloud, function, payload)).await;
    if let (Ok(output), Some(token)) = (&result, task_token) {
        if output == "completed_now" {
            tokio::spawn(nudge(cloud.clone(), token));
        }
    }
    faults.record(Invocation {
        function: function.to_string(),
        error_type: result.as_ref().err().map(|e| e.name().to_string()),
        injected: false,
    });
    Ok(match result {
        Ok(output) => respond(
            StatusCode::OK,
            &[
                ("content-type", "application/json"),
                ("x-amz-executed-version", "$LATEST"),
            ],
            output.to_string(),
        ),
        Err(error) => {
            tracing::info!(function, kind = error.name(), error = %error, "function error");
            function_error(error.name(), &error.to_string())
        }
    })
}

/// moto 5.2.5's engine misses a task success sent *during* the Lambda
/// invocation of a `.waitForTaskToken` task with a heartbeat: it sets up the
/// heartbeat wait only after the invocation returns and reads the outcome
/// only when a heartbeat arrives, so the task would end in
/// `States.HeartbeatTimeout` (AWS completes it at once). After a wait
/// Lambda reports it completed its task itself, send heartbeats until one
/// lands, which makes the engine read the outcome.
async fn nudge(cloud: Arc<LocalCloud>, token: String) {
    use clonesync::ports::{Cloud, Coordination};
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if let Ok(true) = cloud.coordination().send_heartbeat(&token).await {
            return;
        }
    }
}

/// Bind the endpoint's port now (moto must be told it before it starts).
pub async fn bind() -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| Error::LocalPortUnavailable {
            reason: format!("bind the Lambda endpoint: {e}"),
            cause: Some(Box::new(e)),
        })
}

/// Serve invocations on `listener` until the task is aborted; any other
/// request goes on to moto on `moto_port`, when given.
pub fn serve(
    listener: tokio::net::TcpListener,
    cloud: Arc<LocalCloud>,
    faults: Arc<Faults>,
    moto_port: Option<u16>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            // 127.0.0.1 is every local account's: serve only processes of
            // our own account (moto's engine, this process).
            let ours = stream
                .local_addr()
                .is_ok_and(|local| crate::peer::same_account(local, peer));
            if !ours {
                tracing::warn!(%peer, "Lambda endpoint: connection from another account refused");
                continue;
            }
            let (cloud, faults) = (cloud.clone(), faults.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    invoke(cloud.clone(), faults.clone(), moto_port, request)
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "Lambda endpoint connection ended");
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_in_paths_are_decoded() {
        assert_eq!(
            percent_decode("arn%3Aaws%3Alambda%3Aeu-west-1%3A1%3Afunction%3Aclonesync-verify"),
            "arn:aws:lambda:eu-west-1:1:function:clonesync-verify"
        );
        assert_eq!(percent_decode("plain-name"), "plain-name");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }

    #[test]
    fn a_fault_for_n_invocations_then_none() {
        let faults = Faults::default();
        faults.add(Fault {
            function: "verify".into(),
            error_type: "Transient.Database".into(),
            times: Some(1),
        });
        assert_eq!(faults.take("preflight"), None);
        assert_eq!(faults.take("verify").as_deref(), Some("Transient.Database"));
        assert_eq!(faults.take("verify"), None);
    }
}
