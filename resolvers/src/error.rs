//! The one error type of the API: client faults carry a stable `extensions.code`,
//! internal faults are logged in full and shown to the client as a generic message.

use async_graphql::ErrorExtensions;

/// Every way an operation can fail, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An argument is malformed or out of range.
    #[error("{0}")]
    BadUserInput(String),
    /// The bytes claim to be an accepted image format but are not a valid image of it.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The bytes are a real file of a format we do not accept.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The image header declares more pixels than we are willing to decode.
    #[error("image too large: {0}")]
    ImageTooLarge(String),
    /// The request or upload has more bytes than allowed.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// The thing named by the request does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// No valid credentials were presented.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Credentials were presented but do not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The answer would not fit the door's response limit (the Lambda's 6 MB payload).
    #[error("response too large: {0}")]
    ResponseTooLarge(String),
    /// This client sent more requests than the server takes from one client; retry later.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// Waited as long as the operation waits (a subscription whose scans did not finish).
    #[error("timed out: {0}")]
    TimedOut(String),
    /// The label is being converted to a new storage layout (`pawql migrate`); retry shortly.
    #[error("{0}")]
    MigrationPending(String),
    /// Keys could not be re-read for longer than they are trusted (SSM failing): requests
    /// that present a key are refused until a re-read succeeds; retry shortly.
    #[error("keys unavailable: {0}")]
    KeysUnavailable(String),
    /// Anything that is our fault. The cause is logged, never sent.
    #[error("internal server error")]
    Internal(anyhow::Error),
}

/// A label still in the chunk layout before write shards: `pawql migrate` converts it. Until
/// then its picks and writes answer `MIGRATION_PENDING` (retryable).
#[derive(Debug, thiserror::Error)]
#[error("label {0} is being converted to the sharded chunk layout (pawql migrate); retry in a minute")]
pub struct MigrationPending(pub String);

/// A write may or may not have been applied, and there was no more time to find out (a
/// DynamoDB transaction resent with its token until the deadline or its budget): whoever
/// cleans up after a failed write must leave what that write points at.
#[derive(Debug, thiserror::Error)]
#[error("{what}: its outcome is unknown (it may have been applied)")]
pub struct WriteOutcomeUnknown {
    pub what: String,
}

/// The work deadline was reached (`deadline.rs`): what was under way is abandoned and the
/// request answered `TIMED_OUT` (see `From<anyhow::Error> for ApiError`).
#[derive(Debug, thiserror::Error)]
#[error("{what}: not finished before the request's deadline")]
pub struct OutOfTime {
    pub what: String,
}

impl From<anyhow::Error> for ApiError {
    /// Port failures are ours, except a label caught mid-migration and a request that ran out
    /// of time, which the client retries.
    fn from(err: anyhow::Error) -> ApiError {
        if let Some(pending) = err.downcast_ref::<MigrationPending>() {
            return ApiError::MigrationPending(pending.to_string());
        }
        match err.chain().find_map(|cause| cause.downcast_ref::<OutOfTime>()) {
            Some(late) => {
                tracing::warn!(error = format!("{err:#}"), "out of time");
                ApiError::TimedOut(format!("{late}; retry with a new request"))
            }
            None => ApiError::Internal(err),
        }
    }
}

impl ApiError {
    /// The code of the request errors async-graphql raises itself (syntax, validation, limits):
    /// the client's fault, like any malformed argument.
    pub const REQUEST_ERROR_CODE: &'static str = "BAD_USER_INPUT";

    /// The `extensions.code` a client can switch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadUserInput(_) => Self::REQUEST_ERROR_CODE,
            ApiError::InvalidImage(_) => "INVALID_IMAGE",
            ApiError::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::ImageTooLarge(_) => "IMAGE_TOO_LARGE",
            ApiError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::ResponseTooLarge(_) => "RESPONSE_TOO_LARGE",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::MigrationPending(_) => "MIGRATION_PENDING",
            ApiError::TimedOut(_) => "TIMED_OUT",
            ApiError::KeysUnavailable(_) => "KEYS_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// Logs the full cause of an internal error (clients only ever see the generic message),
    /// and counts the refusal by its code. Every door that turns an `ApiError` into a
    /// response calls this.
    pub fn log_if_internal(&self) {
        crate::metrics::refusal(self.code());
        if let ApiError::Internal(cause) = self {
            // `{:#}` prints the whole anyhow context chain; it stays in our logs.
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
    }
}

impl ErrorExtensions for ApiError {
    fn extend(&self) -> async_graphql::Error {
        self.log_if_internal();
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| ext.set("code", self.code()))
    }
}

/// Result alias used across the domain and the ports.
pub type ApiResult<T> = Result<T, ApiError>;
