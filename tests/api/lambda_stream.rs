//! The stream function as Lambda runs it: the real `pawql` binary in `lambda` mode with
//! `PAWQL_HANDLER=stream`, against a stand-in Lambda Runtime API on loopback that speaks the
//! runtime's streaming response mode (`Lambda-Runtime-Function-Response-Mode: streaming`: a
//! JSON prelude, eight NUL bytes, then the body as it is written). A Function URL event for
//! `POST /graphql/stream` follows a scan from `PENDING` to its final event while the scan
//! handler finishes it; the first event arrives before the scan is done, so it really streams.

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

use crate::helpers::{Backend, TestApp};
use crate::moto::MotoServer;

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
        let _ = api.chunks.send(chunk);
    }
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
        .clients(crate::iam::enforcing(&plain))
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
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
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
    event["body"] = json!(operation.to_string());
    event["isBase64Encoded"] = json!(false);
    event_tx.send(event).await.unwrap();

    // The prelude, then the first event: the scan as it is, PENDING (nobody has run it).
    let mut received = Received {
        chunks: chunk_rx,
        bytes: Vec::new(),
    };
    let (prelude, events_seen) = received.until("PENDING").await;
    let prelude: Value = serde_json::from_str(&prelude).unwrap();
    assert_eq!(prelude["statusCode"], 200, "{prelude}");
    assert_eq!(prelude["headers"]["content-type"], "text/event-stream", "{prelude}");
    assert_eq!(api.streaming_mode.lock().unwrap().as_deref(), Some("streaming"));
    assert!(
        !events_seen.contains("SUCCEEDED"),
        "the scan has not run yet: {events_seen}"
    );

    // The scan handler finishes the scan; the open stream carries it, then completes.
    let scanner = crate::scan_stream::stream_scanner(&app, pawql::app::offline_detector(0.2).unwrap().unwrap());
    scanner.run(&id, true).await.unwrap();
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
}
