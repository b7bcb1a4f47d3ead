//! `GET /images/{id}`: the bytes behind `Image.url` on the embedded backend, with the
//! content type the bytes have. Content-addressed, so cacheable forever.
//!
//! Served without a key even where reads need one: the id holds the SHA-256 of the bytes, so
//! the URL cannot be guessed, only handed out, which makes it what a presigned S3 URL is on
//! AWS (and `<img src>` cannot send a header).

use axum::extract::{Path, State};
use axum::response::Response;
use resolvers::ApiError;

use super::responses::{api_error_response, image_response};
use super::AppState;

pub async fn bytes(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let found = match state.catalog.image(&id).await {
        Ok(Some(record)) => record,
        Ok(None) => return api_error_response(ApiError::NotFound("no such image".into())),
        Err(err) => return api_error_response(err),
    };
    match state.catalog.image_bytes(&found.id).await {
        Ok(bytes) => image_response(&found, bytes, "public, max-age=31536000, immutable"),
        Err(err) => api_error_response(err),
    }
}
