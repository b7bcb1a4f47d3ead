//! `/graphql`: GraphQL over HTTP (the GraphQL-over-HTTP spec, audited by `graphql-http` in the
//! tests): `POST` with JSON bodies and the multipart request spec, `GET` with `?query=` for
//! queries (mutations only by POST: 405), and GraphiQL for a bare `GET`.
//!
//! We parse the body ourselves rather than with async-graphql-axum's extractor because
//! that extractor applies no size limits: here the body is capped while it streams and a
//! too-large request gets a GraphQL-shaped `PAYLOAD_TOO_LARGE` error, not a bare 413.
//!
//! Media types: a client that accepts `application/graphql-response+json` gets it, with 400
//! and no `data` when the request itself is bad (syntax, validation, variables); everyone else
//! gets `application/json` and 200, as the spec asks for legacy clients.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_graphql::http::MultipartOptions;
use async_graphql::ParseRequestError;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

use resolvers::ApiError;

use super::responses::HttpError;
use super::AppState;

/// Most files one multipart request may carry.
const MAX_FILES_PER_REQUEST: usize = 10;

/// `GET /graphql`: GraphiQL without a query string; a query with one.
pub async fn get(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let Some(raw) = raw.filter(|q| !q.is_empty()) else {
        return super::graphiql::page(&state).into_response();
    };
    let caller = match state.access.current().await.caller(&headers) {
        Ok(caller) => caller,
        Err(refused) => return refused.response(),
    };
    let request = match async_graphql::http::parse_query_string(&raw) {
        Ok(request) => request,
        Err(err) => {
            return bad_request(format!("malformed GraphQL GET request: {err}")).into_response();
        }
    };
    if request.query.is_empty() {
        return bad_request("the `query` parameter is missing".into()).into_response();
    }
    if is_mutation(&request) {
        let mut response = bad_request("mutations are POST only".into())
            .with_status(StatusCode::METHOD_NOT_ALLOWED)
            .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let per_request = resolvers::schema::PerRequest {
        caller: Some(caller),
        response_budget: state.response_budget(),
    };
    let mut prepared = resolvers::schema::prepare_request(request, per_request);
    state.documents.prepare(prepared.request_mut());
    let mut response = async_graphql::BatchResponse::Single(prepared.execute(&state.schema).await);
    code_uncoded_errors(&mut response);
    respond(response, &headers)
}

/// Whether the operation a request would run is a mutation (unparsable: not known to be).
fn is_mutation(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let chosen = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    };
    chosen.is_some_and(|op| op.node.ty == OperationType::Mutation)
}

/// Serialises a response in the media type the client accepts (see the module header).
fn respond(response: async_graphql::BatchResponse, headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let wants_graphql_json = accept.contains(GRAPHQL_RESPONSE_JSON);
    let mut status = StatusCode::OK;
    let mut body = match serde_json::to_value(&response) {
        Ok(body) => body,
        Err(e) => {
            return HttpError::from(ApiError::Internal(anyhow::anyhow!("serialising a response: {e}"))).into_response()
        }
    };
    if let (true, async_graphql::BatchResponse::Single(single)) = (wants_graphql_json, &response) {
        // A request error (nothing executed): errors without a path, and no data.
        let request_error = single.data == async_graphql::Value::Null
            && !single.errors.is_empty()
            && single.errors.iter().all(|e| e.path.is_empty());
        if request_error {
            status = StatusCode::BAD_REQUEST;
            if let Some(object) = body.as_object_mut() {
                object.remove("data");
            }
        }
    }
    let content_type = if wants_graphql_json {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    };
    (status, [(header::CONTENT_TYPE, content_type)], body.to_string()).into_response()
}

/// The GraphQL-over-HTTP spec's own response media type.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// `POST /graphql`.
pub async fn execute(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    // Refused before the body is read: an unknown key, or no key where reads need one.
    let caller = match state.access.current().await.caller(&headers) {
        Ok(caller) => caller,
        Err(refused) => return refused.response(),
    };
    let limit = state.max_body_bytes();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return HttpError::from(state.direct_upload_too_large()).into_response();
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let understood = content_type.as_deref().is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.starts_with("application/json") || t.starts_with("multipart/form-data")
    });
    if !understood {
        return bad_request("a POST needs Content-Type application/json or multipart/form-data".into())
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .into_response();
    }

    let exceeded = Arc::new(AtomicBool::new(false));
    let body_reader = capped_body(body, limit, Arc::clone(&exceeded));
    let options = MultipartOptions::default()
        .max_file_size(state.max_direct_upload_bytes())
        .max_num_files(MAX_FILES_PER_REQUEST);
    match async_graphql::http::receive_batch_body(content_type, body_reader, options).await {
        Ok(batch) => {
            // One budget and one set of loaders for the whole batch: it leaves in one response.
            let per_request = resolvers::schema::PerRequest {
                caller: Some(caller),
                response_budget: state.response_budget(),
            };
            let mut prepared = resolvers::schema::prepare_batch(batch, per_request);
            state.documents.prepare_batch(prepared.request_mut());
            let mut response = prepared.execute(&state.schema).await;
            code_uncoded_errors(&mut response);
            respond(response, &headers)
        }
        Err(_) if exceeded.load(Ordering::Relaxed) => HttpError::from(state.direct_upload_too_large()).into_response(),
        Err(ParseRequestError::PayloadTooLarge) => HttpError::from(state.direct_upload_too_large()).into_response(),
        Err(err) => bad_request(format!("malformed GraphQL request: {err}")).into_response(),
    }
}

/// Our resolvers' errors carry `extensions.code`; async-graphql's own parse, validation and
/// limit errors (bad syntax, unknown fields, too deep or too complex) do not. They are all the
/// client's doing, so they get `BAD_USER_INPUT`: every error a client sees has a code.
fn code_uncoded_errors(response: &mut async_graphql::BatchResponse) {
    match response {
        async_graphql::BatchResponse::Single(one) => code_errors(std::slice::from_mut(one)),
        async_graphql::BatchResponse::Batch(many) => code_errors(many.as_mut_slice()),
    }
}

/// [`code_uncoded_errors`] over responses (one, or each of a stream's).
pub(super) fn code_errors(responses: &mut [async_graphql::Response]) {
    for error in responses.iter_mut().flat_map(|r| r.errors.iter_mut()) {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", ApiError::REQUEST_ERROR_CODE);
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

/// A request GraphQL cannot even read: the client's fault.
fn bad_request(message: String) -> HttpError {
    ApiError::BadUserInput(message).into()
}
