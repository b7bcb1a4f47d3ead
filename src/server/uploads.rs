//! `PUT /uploads/{ticket}`: the embedded backend's stand-in for S3's presigned PUT, so the
//! presigned upload flow (`requestUpload` → PUT → `completeUpload`) works locally too.
//! Only the embedded backend's URLs point here; on AWS every PUT is refused (NOT_FOUND), as
//! its clients PUT straight to S3.
//!
//! It holds the same line S3 holds for a presigned URL: the URL must be one this store
//! signed (ticket, declared length and expiry, `domain/ticket.rs`), not yet expired, and the
//! body exactly the declared length. All of it is checked before a byte is written, so a
//! refused PUT leaves nothing on disk.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use resolvers::domain::ticket::{SignedUpload, UploadTicket};
use resolvers::ApiError;

use super::responses::HttpError;
use super::AppState;

pub async fn put(
    State(state): State<AppState>,
    Path(ticket): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let staged = &state.staged;
    // Refused before anything of the request is read: nothing here was signed by this server.
    if !staged.takes_puts_here() {
        return Err(ApiError::NotFound("uploads go straight to S3 on this backend".into()).into());
    }
    let ticket = UploadTicket::parse(&ticket, &state.catalog.settings().labels)?;
    let signed = SignedUpload::from_query(ticket, query.as_deref())?;
    staged.verify(&signed)?;
    let declared = signed.byte_size;
    // Longer than declared is too large; shorter is a wrong length. Both name the rule.
    let wrong_length = |got: u64| {
        let rule =
            format!("this upload URL is for exactly {declared} bytes (the byteSize given to requestUpload), not {got}");
        if got > declared {
            ApiError::PayloadTooLarge(rule)
        } else {
            ApiError::BadUserInput(rule)
        }
    };
    // A Content-Length that disagrees is refused before the body is read, as S3 refuses it.
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let length = length
            .to_str()
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ApiError::BadUserInput("the Content-Length header is not a number".into()))?;
        if length != declared {
            return Err(wrong_length(length).into());
        }
    }
    // Capped at the declared length while it streams (requestUpload keeps that within the
    // upload limit), so a longer body is refused without being buffered whole.
    let limit = usize::try_from(declared).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        // Over the cap is a longer body; anything else (a client that stopped sending) is not.
        let too_long = std::error::Error::source(&e)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_long {
            ApiError::PayloadTooLarge(format!(
                "this upload URL is for exactly {declared} bytes (the byteSize given to requestUpload), and the body is longer"
            ))
        } else {
            ApiError::BadUserInput(format!("the upload's body could not be read whole: {e}"))
        }
    })?;
    if bytes.len() as u64 != declared {
        return Err(wrong_length(bytes.len() as u64).into());
    }
    staged.write(&signed.ticket, bytes).await.map_err(ApiError::Internal)?;
    Ok(StatusCode::OK.into_response())
}
