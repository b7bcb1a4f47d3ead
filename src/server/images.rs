//! `GET /images/{id}[?size=thumb]`: the bytes behind `Image.url` on the embedded backend (a
//! sized variant, or the original where that size is not stored), with the content type the
//! bytes have. Content-addressed, so cacheable forever.
//!
//! Served without a key even where reads need one: the id holds the SHA-256 of the bytes, so
//! the URL cannot be guessed, only handed out, which makes it what a presigned S3 URL is on
//! AWS (and `<img src>` cannot send a header).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use resolvers::ApiError;

use super::responses::{image_response, HttpError};
use super::AppState;

#[derive(serde::Deserialize)]
pub struct SizeParam {
    size: Option<String>,
}

pub async fn bytes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<SizeParam>,
) -> Result<Response, HttpError> {
    let size = super::rest::parse_size(params.size.as_deref())?;
    let found = state
        .catalog
        .image(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such image".into()))?;
    let (bytes, kind) = state.catalog.sized_bytes(&found, size).await?;
    Ok(image_response(
        &found,
        kind,
        bytes,
        "public, max-age=31536000, immutable",
    ))
}
