//! The Lambda entry: the same axum router, driven by `lambda_http` instead of a socket.
//!
//! `lambda_http` turns API Gateway HTTP API (payload v2) and Function URL events into
//! `http::Request`s: a body with `isBase64Encoded` (how API Gateway delivers binary bodies,
//! multipart uploads included) is decoded to bytes first. Responses go back the other way:
//! text and JSON as text, anything else (image bytes from `GET /random`) base64-encoded.

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

/// Runs one event (the JSON API Gateway would send) through the adapter [`run`] uses, and
/// returns the JSON response Lambda would hand back. For tests and debugging.
pub async fn invoke(router: Router, event: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let request: LambdaRequest = serde_json::from_value(event)?;
    let mut adapter = Adapter::from(router);
    let adapter = adapter.ready().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(serde_json::to_value(&response)?)
}

/// A short description of an unexpected event for an error message: its top-level keys, not
/// its content (which may be large or private).
pub fn describe_event(event: &serde_json::Value) -> String {
    match event.as_object() {
        Some(object) => format!("keys {:?}", object.keys().take(8).collect::<Vec<_>>()),
        None => "not a JSON object".to_owned(),
    }
}
