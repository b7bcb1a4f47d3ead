//! `PUT /uploads/{ticket}`: the embedded backend's stand-in for S3's presigned PUT, so the
//! presigned upload flow (`requestUpload` → PUT → `completeUpload`) works locally too.
//! Only routed when the backend stages uploads on local disk.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use resolvers::domain::ticket::UploadTicket;
use resolvers::ApiError;

use super::responses::api_error_response;
use super::AppState;

pub async fn put(State(state): State<AppState>, Path(ticket): Path<String>, body: Body) -> Response {
    let Some(staging) = state.staging.as_ref() else {
        return api_error_response(ApiError::NotFound("uploads go straight to S3 on this backend".into()));
    };
    let ticket = match UploadTicket::parse(&ticket, &state.catalog.settings().labels) {
        Ok(ticket) => ticket,
        Err(err) => return api_error_response(err),
    };
    let max_bytes = state.catalog.settings().limits.max_bytes;
    // Capped while it streams: an oversized body is refused without being buffered whole.
    let bytes = match axum::body::to_bytes(body, max_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return api_error_response(ApiError::PayloadTooLarge(format!(
                "the upload is larger than {max_bytes} bytes"
            )))
        }
    };
    match staging.write_staged(&ticket, bytes).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => api_error_response(ApiError::Internal(err)),
    }
}
