//! petAPI's REST routes, so its users' curl commands keep working unchanged:
//! `POST /upload` (multipart fields `label`, `img`, `weight`) and `GET /random?label=…`
//! (the image bytes with their Content-Type). Both call the same catalogue as GraphQL.

use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use resolvers::ApiError;
use serde::Deserialize;

use super::responses::{api_error_response, error_response, image_response};
use super::AppState;

/// `POST /upload`: answers the stored image as JSON (id, url and facts).
pub async fn upload(State(state): State<AppState>, headers: HeaderMap, multipart: Multipart) -> Response {
    if let Some(refused) = state.access.current().await.refuse_writer(&headers) {
        return refused;
    }
    let (label, weight, img) = match read_upload_form(multipart).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let Some(label) = label else {
        return bad_input("the form field `label` is required");
    };
    let Some(img) = img else {
        return bad_input("the form field `img` (the image file) is required");
    };
    let weight = match weight.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
        None => None,
        Some(text) => match text.parse::<f64>() {
            Ok(w) => Some(w),
            Err(_) => return bad_input("the form field `weight` must be a number, 0 < weight <= 1"),
        },
    };
    let record = match state.catalog.upload(&label, weight, img).await {
        Ok(record) => record,
        Err(err) => return api_error_response(err),
    };
    let url = match state.catalog.image_url(&record).await {
        Ok(url) => url,
        Err(err) => return api_error_response(err),
    };
    axum::Json(serde_json::json!({
        "id": record.id.to_string(),
        "label": record.id.label.as_str(),
        "weight": record.weight.as_f64(),
        "contentType": record.kind.content_type(),
        "width": record.width,
        "height": record.height,
        "byteSize": record.byte_size,
        "sha256": record.id.sha256.as_str(),
        "url": url,
        "inPool": record.hold.is_none(),
        "heldReason": record.hold,
    }))
    .into_response()
}

type UploadForm = (Option<String>, Option<String>, Option<Bytes>);

/// Reads the petAPI form; unknown fields are ignored, as petAPI did.
async fn read_upload_form(mut multipart: Multipart) -> Result<UploadForm, Response> {
    let (mut label, mut weight, mut img) = (None, None, None);
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error_response(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "payload too large")
        } else {
            bad_input(&format!("malformed multipart form: {}", e.body_text()))
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(form_error)? {
        match field.name() {
            Some("label") => label = Some(field.text().await.map_err(form_error)?),
            Some("weight") => weight = Some(field.text().await.map_err(form_error)?),
            Some("img") => img = Some(field.bytes().await.map_err(form_error)?),
            _ => {}
        }
    }
    Ok((label, weight, img))
}

#[derive(Deserialize)]
pub struct RandomParams {
    label: Option<String>,
}

/// `GET /random?label=…`: the bytes of a weighted random image; 404 when the label is empty.
pub async fn random(State(state): State<AppState>, headers: HeaderMap, Query(params): Query<RandomParams>) -> Response {
    if let Some(refused) = state.access.current().await.refuse_reader(&headers) {
        return refused;
    }
    let Some(label) = params.label else {
        return bad_input("the query parameter `label` is required");
    };
    let record = match state.catalog.random_image(&label).await {
        Ok(Some(record)) => record,
        Ok(None) => return api_error_response(ApiError::NotFound(format!("label {label} has no images"))),
        Err(err) => return api_error_response(err),
    };
    // Where a response is capped (the Lambda's 6 MB, with binary bodies base64-encoded), an
    // image too large to pass is handed over by a redirect to its URL (presigned on S3):
    // every accepted image stays fetchable here, and `curl -L` follows.
    let too_large = state
        .response_limit
        .is_some_and(|limit| resolvers::schema::base64_len(record.byte_size) + REDIRECT_ROOM > limit);
    if too_large {
        return match state.catalog.image_url(&record).await {
            Ok(url) => redirect_to(&record, &url),
            Err(err) => api_error_response(err),
        };
    }
    match state.catalog.image_bytes(&record.id).await {
        // A fresh draw on every request: never cached.
        Ok(bytes) => image_response(&record, bytes, "no-store"),
        Err(err) => api_error_response(err),
    }
}

/// Room in a capped response for the headers and the Lambda's JSON envelope around the bytes.
const REDIRECT_ROOM: usize = 16 * 1024;

/// A `302 Found` to an image's URL, uncached (the next `/random` is another draw).
fn redirect_to(record: &resolvers::domain::image::ImageRecord, url: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (axum::http::header::LOCATION, url.to_owned()),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
            (axum::http::HeaderName::from_static("x-image-id"), record.id.to_string()),
        ],
    )
        .into_response()
}

fn bad_input(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "BAD_USER_INPUT", message)
}
