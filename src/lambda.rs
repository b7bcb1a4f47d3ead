//! The Lambda entry: the same axum router, driven by `lambda_http` instead of a socket, with
//! buffered responses ([`run`], the API function behind the HTTP API) or streamed ones
//! ([`run_streaming`], the stream function's URL, for Server-Sent Events).
//!
//! `lambda_http` turns API Gateway HTTP API (payload v2) and Function URL events into
//! `http::Request`s: a body with `isBase64Encoded` (how API Gateway delivers binary bodies,
//! multipart uploads included) is decoded to bytes first. Responses go back the other way:
//! text and JSON as text, anything else (image bytes from `GET /random`) base64-encoded.
//!
//! A synchronous invocation carries at most 6 MB each way ([`PAYLOAD_LIMIT`]); AWS answers a
//! larger response with a 502 and no word of why. The API therefore plans within it (the
//! router knows its `response_limit`: `base64` stops at `RESPONSE_TOO_LARGE`, `/random`
//! redirects a large image to its URL), and [`cap_responses`] turns anything that still
//! would not fit into a clear error. [`invoke`], the tests' door, enforces the limit both
//! ways as Lambda does.

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use resolvers::ApiError;

use crate::server::HttpError;
use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent, Service};

/// Serves Lambda invocations until the runtime shuts the process down.
pub async fn run(router: Router) -> anyhow::Result<()> {
    lambda_http::run(router)
        .await
        .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}

/// Serves Lambda invocations with streamed responses (a Function URL in `RESPONSE_STREAM`
/// mode): each body chunk reaches the client as the router writes it, so a subscription's
/// events arrive as they happen. Streamed responses may pass 6 MB (Lambda allows 200 MB,
/// at most 2 MB/s past the first 6); the router still plans within 6 MB, as on the buffered
/// function.
pub async fn run_streaming(router: Router) -> anyhow::Result<()> {
    lambda_http::run_with_streaming_response(router)
        .await
        .map_err(|e| anyhow::anyhow!("Lambda runtime (streaming): {e}"))
}

/// Serves AppSync's direct Lambda resolver invocations (`PAWQL_HANDLER=appsync`) until the
/// runtime shuts the process down: each event answered by `door` inside the invocation's
/// deadline (`resolvers::deadline`, as the API function's requests are), an error of a single
/// `Invoke` reported as the function's error with our code as its `errorType`.
pub async fn run_appsync(door: crate::appsync::AppSyncDoor) -> anyhow::Result<()> {
    use lambda_http::lambda_runtime::{self, service_fn, Diagnostic};
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let door = door.clone();
        let deadline = crate::server::instant_of(event.context.deadline);
        async move {
            resolvers::deadline::scope(deadline, door.answer(event.payload))
                .await
                .map_err(Diagnostic::from)
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime (AppSync): {e}"))
}

/// The API function's timeout (serverless.yml `provider.timeout`): API Gateway gives up at 30 s.
pub const API_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(29);

/// Lambda's limit on a function's init phase (the cold start before the first event).
pub const INIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Start-up work (the stage's SSM read, with its throttling retries) inside Lambda's 10 s init
/// phase: it gives up with a clear error a margin before Lambda would kill it.
pub async fn within_init<T>(start: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + INIT_LIMIT;
    resolvers::deadline::scope(Some(deadline), start).await
}

/// Lambda's limit on a synchronous invocation's request and response payloads (6 MB).
pub const PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;

/// Room for the Lambda's JSON envelope and headers around a response body.
const ENVELOPE_BYTES: usize = 8 * 1024;

/// How many payload bytes a body becomes: text as it is, anything else base64-encoded.
fn payload_bytes(content_type: Option<&str>, body_len: usize) -> usize {
    let text = content_type
        .is_some_and(|t| t.starts_with("text/") || t.contains("json") || t.contains("javascript") || t.contains("xml"));
    if text {
        body_len
    } else {
        body_len.div_ceil(3) * 4
    }
}

/// The safety net under the router's own planning: a response that would pass `limit` as a
/// Lambda payload becomes a `RESPONSE_TOO_LARGE` error the client can read (Lambda itself
/// would answer 502). lambda_http buffers whole responses anyway, so this costs no memory.
pub fn cap_responses(router: Router, limit: usize) -> Router {
    router.layer(axum::middleware::map_response(move |response: Response| async move {
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => bytes,
            Err(e) => return HttpError::from(ApiError::Internal(anyhow::anyhow!("reading a response: {e}"))).into_response(),
        };
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        if payload_bytes(content_type, bytes.len()) + ENVELOPE_BYTES > limit {
            tracing::error!(bytes = bytes.len(), "response over the Lambda payload limit, refused");
            return HttpError::from(ApiError::ResponseTooLarge(
                "this response would pass the Lambda's 6 MB payload limit; ask for less (url instead of base64, fewer images)".into(),
            ))
            .into_response();
        }
        Response::from_parts(parts, Body::from(bytes))
    }))
}

/// Runs one event (the JSON API Gateway would send) through the adapter [`run`] uses, and
/// returns the JSON response Lambda would hand back. For tests and debugging. Like Lambda,
/// it refuses an event or a response over [`PAYLOAD_LIMIT`], and gives the invocation the
/// API function's deadline ([`API_TIMEOUT`] from now).
pub async fn invoke(router: Router, event: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    invoke_within(router, event, API_TIMEOUT).await
}

/// [`invoke`] with `timeout` as the function's timeout: the invocation's deadline is that far
/// from now, and like Lambda, nothing is answered past it.
pub async fn invoke_within(
    router: Router,
    event: serde_json::Value,
    timeout: std::time::Duration,
) -> anyhow::Result<serde_json::Value> {
    let size = serde_json::to_vec(&event)?.len();
    anyhow::ensure!(
        size <= PAYLOAD_LIMIT,
        "Lambda: request must be smaller than {PAYLOAD_LIMIT} bytes for the InvokeFunction operation ({size})"
    );
    let request: LambdaRequest = serde_json::from_value(event)?;
    let mut adapter = Adapter::from(router);
    let adapter = adapter.ready().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut context = Context::default();
    let deadline = std::time::SystemTime::now() + timeout;
    context.deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let response = tokio::time::timeout(timeout, adapter.call(LambdaEvent::new(request, context)))
        .await
        .map_err(|_| anyhow::anyhow!("Task timed out after {:.2} seconds", timeout.as_secs_f64()))?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let response = serde_json::to_value(&response)?;
    let size = serde_json::to_vec(&response)?.len();
    anyhow::ensure!(
        size <= PAYLOAD_LIMIT,
        "Lambda: response payload size ({size} bytes) exceeded maximum allowed payload size ({PAYLOAD_LIMIT} bytes)"
    );
    Ok(response)
}

/// A short description of an unexpected event for an error message: its top-level keys, not
/// its content (which may be large or private).
pub fn describe_event(event: &serde_json::Value) -> String {
    match event.as_object() {
        Some(object) => format!("keys {:?}", object.keys().take(8).collect::<Vec<_>>()),
        None => "not a JSON object".to_owned(),
    }
}
