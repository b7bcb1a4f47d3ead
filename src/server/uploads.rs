//! `PUT /uploads/{ticket}`: the embedded backend's stand-in for S3's presigned PUT, so the
//! presigned upload flow (`requestUpload` → PUT → `completeUpload`) works locally too.
//! Only routed when the backend stages uploads on local disk.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use resolvers::domain::ticket::UploadTicket;
use resolvers::ApiError;

use super::responses::HttpError;
use super::AppState;

pub async fn put(State(state): State<AppState>, Path(ticket): Path<String>, body: Body) -> Result<Response, HttpError> {
    let staging = state
        .staging
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("uploads go straight to S3 on this backend".into()))?;
    let ticket = UploadTicket::parse(&ticket, &state.catalog.settings().labels)?;
    let max_bytes = state.catalog.settings().limits.max_bytes;
    // Capped while it streams: an oversized body is refused without being buffered whole.
    let bytes = axum::body::to_bytes(body, max_bytes)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(format!("the upload is larger than {max_bytes} bytes")))?;
    staging.write_staged(&ticket, bytes).await.map_err(ApiError::Internal)?;
    Ok(StatusCode::OK.into_response())
}
