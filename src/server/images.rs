//! `GET /images/{id}`: the bytes behind `Image.url` on the embedded backend, with the
//! content type the bytes have. Content-addressed, so cacheable forever.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use resolvers::ApiError;

use super::graphql::error_response;
use super::AppState;

pub async fn bytes(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let found = match state.catalog.image(&id).await {
        Ok(Some(record)) => record,
        Ok(None) => return error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "no such image"),
        Err(err) => return api_error_response(err),
    };
    match state.catalog.image_bytes(&found.id).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, found.kind.content_type().to_owned()),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned()),
                (header::ETAG, format!("\"{}\"", found.id.sha256.as_str())),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        Err(err) => api_error_response(err),
    }
}

/// Maps a domain error to an HTTP status for the non-GraphQL routes.
pub fn api_error_response(err: ApiError) -> Response {
    let status = match &err {
        ApiError::BadUserInput(_) => StatusCode::BAD_REQUEST,
        ApiError::InvalidImage(_) | ApiError::ImageTooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        ApiError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "internal error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error_response(status, err.code(), &err.to_string())
}
