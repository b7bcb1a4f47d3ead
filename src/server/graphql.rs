//! `POST /graphql`: GraphQL over HTTP, JSON bodies and the multipart request spec.
//!
//! We parse the body ourselves rather than with async-graphql-axum's extractor because
//! that extractor applies no size limits: here the body is capped while it streams and a
//! too-large request gets a GraphQL-shaped `PAYLOAD_TOO_LARGE` error, not a bare 413.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_graphql::http::MultipartOptions;
use async_graphql::ParseRequestError;
use async_graphql_axum::GraphQLResponse;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

use super::responses::error_response;
use super::AppState;

/// Most files one multipart request may carry.
const MAX_FILES_PER_REQUEST: usize = 10;

pub async fn execute(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let limit = state.max_body_bytes();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return payload_too_large(limit);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let exceeded = Arc::new(AtomicBool::new(false));
    let body_reader = capped_body(body, limit, Arc::clone(&exceeded));
    let options = MultipartOptions::default()
        .max_file_size(state.catalog.settings().limits.max_bytes)
        .max_num_files(MAX_FILES_PER_REQUEST);
    match async_graphql::http::receive_batch_body(content_type, body_reader, options).await {
        Ok(batch) => {
            let caller = resolvers::schema::Caller {
                admin: state.is_admin(&headers),
            };
            let mut response = state.schema.execute_batch(batch.data(caller)).await;
            code_uncoded_errors(&mut response);
            GraphQLResponse::from(response).into_response()
        }
        Err(_) if exceeded.load(Ordering::Relaxed) => payload_too_large(limit),
        Err(ParseRequestError::PayloadTooLarge) => payload_too_large(state.catalog.settings().limits.max_bytes),
        Err(err) => error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            &format!("malformed GraphQL request: {err}"),
        ),
    }
}

/// Our resolvers' errors carry `extensions.code`; async-graphql's own parse, validation and
/// limit errors (bad syntax, unknown fields, too deep or too complex) do not. They are all the
/// client's doing, so they get `BAD_USER_INPUT`: every error a client sees has a code.
fn code_uncoded_errors(response: &mut async_graphql::BatchResponse) {
    let responses = match response {
        async_graphql::BatchResponse::Single(one) => std::slice::from_mut(one),
        async_graphql::BatchResponse::Batch(many) => many.as_mut_slice(),
    };
    for error in responses.iter_mut().flat_map(|r| r.errors.iter_mut()) {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "BAD_USER_INPUT");
        }
    }
}

/// The body as an `AsyncRead` that fails (and raises `exceeded`) past `limit` bytes.
fn capped_body(body: Body, limit: usize, exceeded: Arc<AtomicBool>) -> impl futures_util::AsyncRead + Send {
    let mut seen = 0usize;
    body.into_data_stream()
        .map_err(std::io::Error::other)
        .and_then(move |chunk| {
            seen += chunk.len();
            let over = seen > limit;
            if over {
                exceeded.store(true, Ordering::Relaxed);
            }
            async move {
                if over {
                    Err(std::io::Error::other("request body too large"))
                } else {
                    Ok(chunk)
                }
            }
        })
        .into_async_read()
}

fn payload_too_large(limit: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        &format!("payload too large: the limit is {limit} bytes"),
    )
}
