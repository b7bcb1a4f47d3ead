//! petAPI's REST routes, so its users' curl commands keep working unchanged:
//! `POST /upload` (multipart fields `label`, `img`, `weight`) and `GET /random?label=…`
//! (the image bytes with their Content-Type). Both call the same catalogue as GraphQL.

use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use resolvers::domain::variants::ImageSize;
use resolvers::ApiError;
use serde::Deserialize;

use super::responses::{image_response, HttpError};
use super::AppState;

/// `POST /upload`: answers the stored image as JSON (id, url and facts).
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, HttpError> {
    state.access.current().await.refuse_writer(&headers)?;
    let (label, weight, img) = read_upload_form(multipart).await.map_err(|e| match e.status {
        StatusCode::PAYLOAD_TOO_LARGE => state.direct_upload_too_large().into(),
        _ => e,
    })?;
    let label = label.ok_or_else(|| bad_input("the form field `label` is required"))?;
    let img = img.ok_or_else(|| bad_input("the form field `img` (the image file) is required"))?;
    if img.len() > state.max_direct_upload_bytes() {
        return Err(state.direct_upload_too_large().into());
    }
    let weight = match weight.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<f64>()
                .map_err(|_| bad_input("the form field `weight` must be a number, 0 < weight <= 1"))?,
        ),
    };
    let record = state.catalog.upload(&label, weight, img).await?;
    let url = state.catalog.image_url(&record, ImageSize::Original).await?;
    Ok(axum::Json(serde_json::json!({
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
        "heldReason": record.hold.as_ref().map(ToString::to_string),
    }))
    .into_response())
}

type UploadForm = (Option<String>, Option<String>, Option<Bytes>);

/// Reads the petAPI form; unknown fields are ignored, as petAPI did.
async fn read_upload_form(mut multipart: Multipart) -> Result<UploadForm, HttpError> {
    let (mut label, mut weight, mut img) = (None, None, None);
    let form_error = |e: axum::extract::multipart::MultipartError| -> HttpError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the form is larger than the upload limit".into()).into()
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
    size: Option<String>,
}

/// `?size=` as clients spell it (`thumb`, `small`, `medium` or `med`, `original`; default the
/// original); anything else is the client's error, naming the choices.
pub fn parse_size(size: Option<&str>) -> Result<ImageSize, HttpError> {
    match size.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(ImageSize::Original),
        Some(name) => ImageSize::parse(name)
            .ok_or_else(|| bad_input(&format!("size {name:?} is not one of thumb, small, medium, original"))),
    }
}

/// `GET /random?label=…[&size=small]`: the bytes of a weighted random image at that size;
/// 404 when the label is empty.
pub async fn random(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<RandomParams>,
) -> Result<Response, HttpError> {
    state.access.current().await.refuse_reader(&headers)?;
    let label = params
        .label
        .ok_or_else(|| bad_input("the query parameter `label` is required"))?;
    let size = parse_size(params.size.as_deref())?;
    let record = state
        .catalog
        .random_image(&label)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("label {label} has no images")))?;
    // Where a response is capped (the Lambda's 6 MB, with binary bodies base64-encoded), an
    // image too large to pass is handed over by a redirect to its URL (presigned on S3):
    // every accepted image stays fetchable here, and `curl -L` follows.
    let byte_size = record
        .variants
        .iter()
        .find(|v| v.size == size)
        .map_or(record.byte_size, |v| v.byte_size);
    let too_large = state
        .response_limit
        .is_some_and(|limit| resolvers::schema::base64_len(byte_size) + REDIRECT_ROOM > limit);
    if too_large {
        let url = state.catalog.image_url(&record, size).await?;
        return Ok(redirect_to(&record, &url));
    }
    let (bytes, kind) = state.catalog.sized_bytes(&record, size).await?;
    // A fresh draw on every request: never cached.
    Ok(image_response(&record, kind, bytes, "no-store"))
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

fn bad_input(message: &str) -> HttpError {
    ApiError::BadUserInput(message.to_owned()).into()
}
