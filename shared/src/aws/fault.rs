//! SDK errors to [`Error`], decided once.
//!
//! Transport failures, timeouts, 5xx answers and throttling codes become
//! `Transient.Aws` (the state machine retries them); permission codes become
//! `Aws.AccessDenied`; everything else keeps its AWS code in `Aws.Failed`.
//! Adapters match the modeled errors they expect (already exists, not
//! found) before falling back to this.

use crate::error::{Cause, Error};
use aws_sdk_rds::config::http::HttpResponse as Response;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServiceError",
    "InternalServiceErrorException",
    "ServerInternalException",
    "RequestTimeout",
    "RequestTimeoutException",
];

const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "NotAuthorized",
    "AuthorizationError",
    "OperationNotPermittedException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
];

/// The classification itself, on an error code and HTTP status; `cause`
/// is kept as the error's source.
pub fn classify_code(
    service: &str,
    operation: &str,
    code: Option<&str>,
    status: Option<u16>,
    message: &str,
    cause: Option<Cause>,
) -> Error {
    let (service, operation, message) = (
        service.to_string(),
        operation.to_string(),
        message.to_string(),
    );
    match code {
        Some(code) if THROTTLING.contains(&code) => Error::TransientAws {
            service,
            operation,
            message: format!("{code}: {message}"),
            cause,
        },
        Some(code) if DENIED.contains(&code) => Error::AwsAccessDenied {
            service,
            operation,
            message: format!("{code}: {message}"),
            cause,
        },
        _ if status.is_some_and(|s| s >= 500 || s == 429) => Error::TransientAws {
            service,
            operation,
            message: format!("HTTP {}: {message}", status.unwrap_or_default()),
            cause,
        },
        _ => Error::Aws {
            service,
            operation,
            code: code.unwrap_or("Unknown").to_string(),
            message,
            cause,
        },
    }
}

/// Classify any SDK error of any service.
pub fn classify<E>(service: &str, operation: &str, err: SdkError<E, Response>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(service_err) => {
            let inner = service_err.err();
            let status = service_err.raw().status().as_u16();
            let message = inner
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| inner.to_string());
            let code = inner.code().map(str::to_string);
            classify_code(
                service,
                operation,
                code.as_deref(),
                Some(status),
                &message,
                Some(Box::new(err)),
            )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::TransientAws {
                service: service.to_string(),
                operation: operation.to_string(),
                message: describe_chain(&err),
                cause: Some(Box::new(err)),
            }
        }
        _ => Error::Aws {
            service: service.to_string(),
            operation: operation.to_string(),
            code: "Client".into(),
            message: describe_chain(&err),
            cause: Some(Box::new(err)),
        },
    }
}

/// The error and its sources on one line (SDK errors put the useful part
/// in the source).
fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_5xx_are_transient() {
        let e = classify_code(
            "rds",
            "DescribeDBClusters",
            Some("Throttling"),
            Some(400),
            "slow",
            None,
        );
        assert_eq!(e.name(), "Transient.Aws");
        let e = classify_code(
            "ram",
            "GetResourceShares",
            Some("Whatever"),
            Some(503),
            "x",
            None,
        );
        assert_eq!(e.name(), "Transient.Aws");
    }

    #[test]
    fn denial_and_others_keep_their_kind() {
        let e = classify_code(
            "rds",
            "RestoreDBClusterToPointInTime",
            Some("AccessDenied"),
            Some(403),
            "no",
            None,
        );
        assert_eq!(e.name(), "Aws.AccessDenied");
        let e = classify_code(
            "rds",
            "CreateDBInstance",
            Some("InvalidParameterValue"),
            Some(400),
            "bad",
            None,
        );
        assert_eq!(e.name(), "Aws.Failed");
        assert!(e.to_string().contains("InvalidParameterValue"));
    }
}
