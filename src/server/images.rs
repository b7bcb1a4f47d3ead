//! `GET /images/{id}`: the bytes behind `Image.url` on the embedded backend, with the
//! content type the bytes have. Content-addressed, so cacheable forever.
//!
//! Served without a key even where reads need one: the id holds the SHA-256 of the bytes, so
//! the URL cannot be guessed, only handed out, which makes it what a presigned S3 URL is on
//! AWS (and `<img src>` cannot send a header).

use axum::extract::{Path, State};
use axum::response::Response;
use resolvers::ApiError;

use super::responses::{image_response, HttpError};
use super::AppState;

pub async fn bytes(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, HttpError> {
    let found = state
        .catalog
        .image(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such image".into()))?;
    let bytes = state.catalog.image_bytes(&found.id).await?;
    Ok(image_response(&found, bytes, "public, max-age=31536000, immutable"))
}
