//! `POST /graphql/stream`: GraphQL over Server-Sent Events, the `graphql-sse` protocol's
//! "distinct connections" mode (<https://github.com/enisdenjo/graphql-sse/blob/master/PROTOCOL.md>):
//! one request per operation, answered with `text/event-stream` carrying one `next` event per
//! result (`data:` the execution result as JSON) and a final `complete` event.
//!
//! Where there is no WebSocket (API Gateway, Lambda), this is how `scanUpdated` and
//! `scansUpdated` reach a client; queries and mutations work too (one `next`, then
//! `complete`). Keys and read policy are the same as on `POST /graphql`; the body is JSON only
//! (uploads go to `/graphql`). A comment line every 15 s keeps idle proxies from closing the
//! stream while a scan runs.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};

use async_graphql::ErrorExtensions;
use resolvers::ApiError;

use super::responses::HttpError;
use super::AppState;

/// The largest request body: an operation and its variables (no files here).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// How often a comment is sent on an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `POST /graphql/stream`.
pub async fn execute(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match state.access.current().await.caller(&headers) {
        Ok(caller) => caller,
        Err(refused) => return refused.response(),
    };
    let accepts_events = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if !accepts_events {
        return HttpError::from(ApiError::BadUserInput(
            "this endpoint answers with events: send `Accept: text/event-stream` (or use POST /graphql)".into(),
        ))
        .with_status(StatusCode::NOT_ACCEPTABLE)
        .into_response();
    }
    if body.len() > MAX_BODY_BYTES {
        return HttpError::from(ApiError::PayloadTooLarge(format!(
            "a streamed operation's body is at most {MAX_BODY_BYTES} bytes"
        )))
        .into_response();
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            return HttpError::from(ApiError::BadUserInput(format!("malformed GraphQL request: {err}"))).into_response()
        }
    };
    let per_request = resolvers::schema::PerRequest {
        caller: Some(caller),
        response_budget: state.response_budget(),
    };
    let mut prepared = resolvers::schema::prepare_request(request, per_request);
    state.documents.prepare(prepared.request_mut());
    let results = prepared.execute_stream(&state.schema, None).map(|mut response| {
        super::graphql::code_errors(std::slice::from_mut(&mut response));
        let data = serde_json::to_string(&response).unwrap_or_else(|e| {
            // Logged in full; the client sees the generic internal error, as everywhere.
            let failed = ApiError::Internal(anyhow::anyhow!("serialising a subscription result: {e}"));
            let error = failed.extend().into_server_error(Default::default());
            serde_json::to_string(&async_graphql::Response::from_errors(vec![error])).unwrap_or_default()
        });
        Ok::<_, Infallible>(Event::default().event("next").data(data))
    });
    let events = results.chain(stream::once(async { Ok(Event::default().event("complete").data("")) }));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
