//! Response shapes shared by the routes: the GraphQL-style error body (also used where a
//! request never reaches GraphQL execution), the HTTP status of each `ApiError`, and image bytes.

use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use resolvers::domain::image::ImageRecord;
use resolvers::ApiError;

/// `{"errors":[{"message","extensions":{"code"}}]}` with an HTTP status.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

/// A domain error as an HTTP response, for the non-GraphQL routes.
pub fn api_error_response(err: ApiError) -> Response {
    err.log_if_internal();
    let status = match &err {
        ApiError::BadUserInput(_) => StatusCode::BAD_REQUEST,
        ApiError::InvalidImage(_) | ApiError::ImageTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        // The request was fine; this door cannot carry the answer.
        ApiError::ResponseTooLarge(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error_response(status, err.code(), &err.to_string())
}

/// An image's bytes with the type they have; `cache_control` says how long clients may keep them.
pub fn image_response(image: &ImageRecord, bytes: Bytes, cache_control: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, image.kind.content_type().to_owned()),
            (header::CACHE_CONTROL, cache_control.to_owned()),
            (header::ETAG, format!("\"{}\"", image.id.sha256.as_str())),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (HeaderName::from_static("x-image-id"), image.id.to_string()),
        ],
        bytes,
    )
        .into_response()
}
