//! Response shapes shared by the routes: the GraphQL-style error body (also used where a
//! request never reaches GraphQL execution), the HTTP status of each `ApiError`, and image bytes.

use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use resolvers::domain::image::{ImageKind, ImageRecord};
use resolvers::ApiError;

/// `{"errors":[{"message","extensions":{"code"}}]}` with an HTTP status.
fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

/// A domain error on its way out of an HTTP handler: handlers return `Result<_, HttpError>`
/// and use `?`. The answer is the GraphQL-shaped error body (also where a request never
/// reaches GraphQL) with the error's code and the HTTP status of its kind, unless a route
/// says otherwise ([`HttpError::with_status`]); internal errors are logged in full and shown
/// as the generic message.
#[derive(Debug)]
pub struct HttpError {
    error: ApiError,
    pub(super) status: StatusCode,
}

impl HttpError {
    /// The same error answered with `status` (a 405 or 415 for a request GraphQL never saw).
    pub fn with_status(mut self, status: StatusCode) -> HttpError {
        self.status = status;
        self
    }
}

/// The HTTP status of each kind of error.
fn status_of(error: &ApiError) -> StatusCode {
    match error {
        ApiError::BadUserInput(_) => StatusCode::BAD_REQUEST,
        ApiError::InvalidImage(_) | ApiError::ImageTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        ApiError::MigrationPending(_) | ApiError::KeysUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
        // The request was fine; this door cannot carry the answer.
        ApiError::ResponseTooLarge(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> HttpError {
        let status = status_of(&error);
        HttpError { error, status }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        self.error.log_if_internal();
        error_body(self.status, self.error.code(), &self.error.to_string())
    }
}

/// An image's bytes (`kind`: of the original, or of the variant served) with the type they
/// have; `cache_control` says how long clients may keep them.
pub fn image_response(image: &ImageRecord, kind: ImageKind, bytes: Bytes, cache_control: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind.content_type().to_owned()),
            (header::CACHE_CONTROL, cache_control.to_owned()),
            (header::ETAG, format!("\"{}\"", image.id.sha256.as_str())),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (HeaderName::from_static("x-image-id"), image.id.to_string()),
        ],
        bytes,
    )
        .into_response()
}
