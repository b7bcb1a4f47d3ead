//! The stream function as Lambda runs it: the real `pawql` binary in `lambda` mode with
//! `PAWQL_HANDLER=stream`, against a stand-in Lambda Runtime API on loopback that speaks the
//! runtime's streaming response mode (`Lambda-Runtime-Function-Response-Mode: streaming`: a
//! JSON prelude, eight NUL bytes, then the body as it is written). A Function URL event for
//! `POST /graphql/stream` follows a scan from `PENDING` to its final event while the scan
//! handler finishes it; the first event arrives before the scan is done, so it really streams.
//!
//! The same function, with private reads and CORS origins configured, serves that route only
//! (everything else is 404: the URL is public and outside the HTTP API's throttle), refuses a
//! keyless subscription as the API would, and adds no CORS header of its own: the Function
//! URL's `Cors` answers preflights and adds the headers (scripts/check-template.py checks it
//! is there), so a header from the function would make `Access-Control-Allow-Origin` appear
//! twice, which browsers refuse.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::deployment::Running;

use crate::support::helpers::{Backend, TestApp};
use crate::support::moto::MotoServer;

/// What the stand-in hands out and what it received.
#[derive(Clone)]
struct RuntimeApi {
    /// Events waiting for the function's next `GET …/invocation/next`.
    events: Arc<tokio::sync::Mutex<mpsc::Receiver<Value>>>,
    /// Each response body chunk as it arrives, and the streaming header of the response.
    chunks: mpsc::UnboundedSender<Bytes>,
    streaming_mode: Arc<Mutex<Option<String>>>,
}

async fn next_invocation(State(api): State<RuntimeApi>) -> Response {
    let Some(event) = api.events.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 900_000;
    (
        [
            ("lambda-runtime-aws-request-id", "req-1".to_owned()),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:pawql-test-stream".to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000".to_owned(),
            ),
        ],
        event.to_string(),
    )
        .into_response()
}

async fn response(
    State(api): State<RuntimeApi>,
    Path(_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> StatusCode {
    *api.streaming_mode.lock().unwrap() = headers
        .get("lambda-runtime-function-response-mode")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        if !chunk.is_empty() {
            let _ = api.chunks.send(chunk);
        }
    }
    // An empty chunk marks the end of this invocation's response.
    let _ = api.chunks.send(Bytes::new());
    StatusCode::ACCEPTED
}

async fn error(Path(_id): Path<String>, body: String) -> StatusCode {
    panic!("the function reported an error: {body}");
}

#[tokio::test]
async fn the_stream_function_streams_a_scan_from_pending_to_its_end() {
    let plain = MotoServer::shared().await.clients().await;
    // The API as deployed (no worker: scans wait for the scan handler), on a stage with a key.
    let app = TestApp::builder(Backend::Aws)
        .clients(plain.clone())
        .stream_handler_scans()
        .start()
        .await;
    let stage = app.stage().to_owned();
    crate::lambda::set_keys(&plain, &stage, "apiKeys", "stream-test-key-0123456789").await;
    let image = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let scan = crate::scan::request_scan_of(&app, image["id"].as_str().unwrap(), false, false).await;
    let id = scan["id"].as_str().unwrap().to_owned();
    assert_eq!(scan["status"], "PENDING");

    let (event_tx, event_rx) = mpsc::channel(4);
    let (chunk_tx, chunk_rx) = mpsc::unbounded_channel();
    let api = RuntimeApi {
        events: Arc::new(tokio::sync::Mutex::new(event_rx)),
        chunks: chunk_tx,
        streaming_mode: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let runtime_api = listener.local_addr().unwrap().to_string();
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .with_state(api.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let moto = MotoServer::shared().await;
    let stream_key = crate::iam::acting_as(&[crate::iam::Function::Stream], &stage);
    let _function = Running(
        Command::new(env!("CARGO_BIN_EXE_pawql"))
            .envs([
                ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
                ("AWS_LAMBDA_FUNCTION_NAME", "pawql-test-stream"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
                ("PAWQL_HANDLER", "stream"),
                ("PAWQL_STAGE", stage.as_str()),
                ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
                // The stream function's own role, on this stage only (moto's server enforces it).
                ("AWS_ACCESS_KEY_ID", stream_key.as_str()),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
                ("PAWQL_PUBLIC_READS", "false"),
                ("PAWQL_CORS_ORIGINS", "https://app.example"),
            ])
            .env_remove("PAWQL_BUCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // A Function URL event, as Lambda delivers POST <StreamUrl>/graphql/stream.
    let mut event: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events/function-url-post-graphql-base64.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let operation = json!({
        "query": "subscription($id: ID!) { scanUpdated(id: $id) { id status isCat } }",
        "variables": { "id": id },
    });
    event["rawPath"] = json!("/graphql/stream");
    event["requestContext"]["http"]["path"] = json!("/graphql/stream");
    event["headers"]["accept"] = json!("text/event-stream");
    event["headers"]["origin"] = json!("https://app.example");
    event["body"] = json!(operation.to_string());
    event["isBase64Encoded"] = json!(false);
    let mut received = Received {
        chunks: chunk_rx,
        bytes: Vec::new(),
    };

    // Reads are private on this stage: a subscription without a key is refused, as on the API.
    event_tx.send(event.clone()).await.unwrap();
    let (prelude, body) = received.whole_response().await;
    assert_eq!(prelude["statusCode"], 401, "{prelude} {body}");
    assert!(body.contains("UNAUTHENTICATED"), "{body}");

    // With the key: the prelude, then the first event: the scan as it is, PENDING (nobody has
    // run it).
    event["headers"]["x-api-key"] = json!("stream-test-key-0123456789");
    event_tx.send(event.clone()).await.unwrap();
    let (prelude, events_seen) = received.until("PENDING").await;
    let prelude: Value = serde_json::from_str(&prelude).unwrap();
    assert_eq!(prelude["statusCode"], 200, "{prelude}");
    assert_eq!(prelude["headers"]["content-type"], "text/event-stream", "{prelude}");
    assert_no_cors_headers(&prelude);
    assert_eq!(api.streaming_mode.lock().unwrap().as_deref(), Some("streaming"));
    assert!(
        !events_seen.contains("SUCCEEDED"),
        "the scan has not run yet: {events_seen}"
    );

    // The scan handler finishes the scan; the open stream carries it, then completes.
    let scanner = crate::scan_stream::stream_scanner(&app, crate::scan_stream::offline_detector()).await;
    scanner.run(&crate::scan::scan_id(&id), true).await.unwrap();
    let (_, mut text) = received.until("event: complete").await;
    let events = pawql::client::events::take_events(&mut text);
    let statuses: Vec<String> = events
        .iter()
        .filter(|e| e.event == "next")
        .map(|e| {
            let result: Value = serde_json::from_str(&e.data).unwrap();
            result["data"]["scanUpdated"]["status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(statuses.first().map(String::as_str), Some("PENDING"), "{events:?}");
    assert_eq!(statuses.last().map(String::as_str), Some("SUCCEEDED"), "{events:?}");
    assert_eq!(events.last().unwrap().event, "complete");
    received.whole_response().await;

    // Nothing else is served here: not the API's GraphQL, not petAPI's routes, not the page.
    for (method, path, body) in [
        ("POST", "/graphql", r#"{"query":"{ labels { label } }"}"#),
        ("GET", "/graphql", ""),
        ("POST", "/upload", ""),
        ("GET", "/random", ""),
        ("GET", "/", ""),
        ("GET", "/healthz", ""),
    ] {
        let mut other = event.clone();
        other["rawPath"] = json!(path);
        other["requestContext"]["http"]["path"] = json!(path);
        other["requestContext"]["http"]["method"] = json!(method);
        other["headers"]["content-type"] = json!("application/json");
        other["body"] = json!(body);
        if path == "/random" {
            other["rawQueryString"] = json!("label=cat");
        }
        event_tx.send(other).await.unwrap();
        let (prelude, body) = received.whole_response().await;
        assert_eq!(prelude["statusCode"], 404, "{method} {path}: {prelude} {body}");
        assert!(body.contains("NOT_FOUND"), "{method} {path}: {body}");
        assert_no_cors_headers(&prelude);
    }

    // A preflight, were Lambda to pass it on (it answers them itself): no CORS header from
    // the function either.
    let mut preflight = event.clone();
    preflight["requestContext"]["http"]["method"] = json!("OPTIONS");
    preflight["headers"]["access-control-request-method"] = json!("POST");
    preflight["headers"]["access-control-request-headers"] = json!("content-type,x-api-key");
    preflight["body"] = json!("");
    event_tx.send(preflight).await.unwrap();
    let (prelude, _) = received.whole_response().await;
    assert_no_cors_headers(&prelude);
}

/// The function's response carries no CORS header: the Function URL adds exactly one set.
fn assert_no_cors_headers(prelude: &Value) {
    let headers = prelude["headers"].as_object().cloned().unwrap_or_default();
    let cors: Vec<_> = headers
        .keys()
        .chain(
            prelude["multiValueHeaders"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys()),
        )
        .filter(|name| name.to_ascii_lowercase().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "the function sent CORS headers of its own: {prelude}");
}

/// The response body as it arrives from the function.
struct Received {
    chunks: mpsc::UnboundedReceiver<Bytes>,
    bytes: Vec<u8>,
}

impl Received {
    /// Reads chunks until the events (after the prelude and its eight NUL bytes) contain
    /// `wanted`; answers (prelude, events so far).
    async fn until(&mut self, wanted: &str) -> (String, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(at) = self.bytes.windows(8).position(|w| w == [0u8; 8]) {
                let events = String::from_utf8_lossy(&self.bytes[at + 8..]).into_owned();
                if events.contains(wanted) {
                    return (String::from_utf8_lossy(&self.bytes[..at]).into_owned(), events);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.chunks.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {wanted} within 60 s; got {:?}",
                        String::from_utf8_lossy(&self.bytes)
                    )
                })
                .expect("the stand-in runtime stopped");
            self.bytes.extend_from_slice(&chunk);
        }
    }

    /// Reads the rest of the current invocation's response: (prelude, body). Forgets it, so
    /// the next call reads the next invocation's.
    async fn whole_response(&mut self) -> (Value, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let chunk = tokio::time::timeout_at(deadline, self.chunks.recv())
                .await
                .expect("a whole response within 60 s")
                .expect("the stand-in runtime stopped");
            if chunk.is_empty() {
                break;
            }
            self.bytes.extend_from_slice(&chunk);
        }
        let bytes = std::mem::take(&mut self.bytes);
        let at = bytes
            .windows(8)
            .position(|w| w == [0u8; 8])
            .unwrap_or_else(|| panic!("no prelude in {:?}", String::from_utf8_lossy(&bytes)));
        let prelude = serde_json::from_slice(&bytes[..at]).unwrap();
        (prelude, String::from_utf8_lossy(&bytes[at + 8..]).into_owned())
    }
}
