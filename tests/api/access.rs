//! Who gets in: API keys for writes (several live at once), admin keys for debug data, private
//! reads when configured, introspection switchable, CORS by configuration, per-client rate
//! limiting on the local server, and bounded outbound calls.

use std::sync::Arc;
use std::time::Duration;

use pawql::server::{Access, RateLimit, ServerOptions};
use serde_json::{json, Value};

use crate::support::helpers::{error_codes, fixture, Backend, TestApp};

const KEY_1: &str = "client-key-one-0123456789";
const KEY_2: &str = "client-key-two-0123456789";
const ADMIN: &str = "admin-key-0123456789abcdef";

fn keyed(public_reads: bool) -> ServerOptions {
    ServerOptions {
        access: Access::new(vec![KEY_1.into(), KEY_2.into()], vec![ADMIN.into()], public_reads),
        ..ServerOptions::default()
    }
}

/// A GraphQL multipart upload of a fixture with `key`; returns (status, body).
async fn upload_as(app: &TestApp, key: Option<&str>, label: &str, file: &str) -> (u16, Value) {
    let operations = json!({
        "query": "mutation($image: Upload!, $label: String!) { upload(label: $label, image: $image) { id } }",
        "variables": { "image": null, "label": label }
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.image"] }).to_string())
        .part("0", reqwest::multipart::Part::bytes(fixture(file)).file_name("f"));
    let mut request = app.client.post(format!("{}/graphql", app.address)).multipart(form);
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn writes_need_an_api_key_and_leave_nothing_without_one(backend: Backend) {
    let app = TestApp::builder(backend).options(keyed(true)).start().await;
    let before = app.residue().await;
    let (_, refused) = upload_as(&app, None, "cat", "images/cat_chelsea.png").await;
    assert_eq!(error_codes(&refused), ["UNAUTHENTICATED"], "{refused}");
    assert_eq!(app.residue().await, before, "a refused write stores nothing");

    // Either live key works: keys rotate by running two at once.
    let (_, first) = upload_as(&app, Some(KEY_1), "cat", "images/cat_chelsea.png").await;
    let id = first["data"]["upload"]["id"]
        .as_str()
        .expect("uploaded with key 1")
        .to_owned();
    let (_, second) = upload_as(&app, Some(KEY_2), "dog", "images/dog_kde_golden.png").await;
    assert!(second["data"]["upload"]["id"].is_string(), "{second}");
    let (_, by_admin) = upload_as(&app, Some(ADMIN), "cat", "images/cat_kde_tabby.png").await;
    assert!(
        by_admin["data"]["upload"]["id"].is_string(),
        "admin keys can write too: {by_admin}"
    );

    // Every mutation is guarded; reads stay public.
    for (mutation, variables) in [
        (
            "mutation($id: ID!) { setWeight(id: $id, weight: 0.9) { id } }",
            json!({ "id": id }),
        ),
        ("mutation($id: ID!) { deleteImage(id: $id) }", json!({ "id": id })),
        (
            "mutation { requestUpload(label: \"cat\", byteSize: 100) { ticket } }",
            json!({}),
        ),
        (
            "mutation($id: ID!) { requestScan(imageId: $id) { id } }",
            json!({ "id": id }),
        ),
        (
            "mutation { completeUpload(ticket: \"cat.0123456789abcdef0123456789abcdef\") { id } }",
            json!({}),
        ),
    ] {
        let (_, body) = app.graphql_as(None, mutation, variables).await;
        assert_eq!(error_codes(&body), ["UNAUTHENTICATED"], "{mutation}: {body}");
    }
    let (status, read) = app
        .graphql_as(None, "{ randomImage(label: \"cat\") { id } }", json!({}))
        .await;
    assert_eq!((status, read.get("errors")), (200, None), "{read}");
    assert!(
        app.tables
            .get_image(
                &resolvers::domain::image::ImageId::parse(&id, &resolvers::domain::label::LabelSet::default_pets())
                    .unwrap()
            )
            .await
            .unwrap()
            .is_some(),
        "nothing was deleted"
    );

    // A key that matches none is refused outright, even for a read.
    let (status, wrong) = app
        .graphql_as(Some("client-key-one-012345678"), "{ labels { label } }", json!({}))
        .await;
    assert_eq!((status, error_codes(&wrong)), (401, vec!["UNAUTHENTICATED".to_owned()]));

    // petAPI's REST upload is a write too; its random read is public.
    let form = || {
        reqwest::multipart::Form::new().text("label", "cat").part(
            "img",
            reqwest::multipart::Part::bytes(fixture("images/none_rocket.jpg")).file_name("r.jpg"),
        )
    };
    let refused = app
        .client
        .post(format!("{}/upload", app.address))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let accepted = app
        .client
        .post(format!("{}/upload", app.address))
        .header("x-api-key", KEY_2)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let random = app
        .client
        .get(format!("{}/random?label=cat", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(random.status(), 200);
}

on_both_backends!(writes_need_an_api_key_and_leave_nothing_without_one);

/// Any configured key closes writes to callers without one: none, API keys only, admin keys
/// only, both. A keyless mutation is a field error in a well-formed GraphQL response
/// (`data.upload` null, `UNAUTHENTICATED`): the GraphQL-over-HTTP spec recommends 200 for
/// that under both `application/json` and `application/graphql-response+json`, so that is
/// what clients get; petAPI's REST `/upload` answers 401.
async fn any_configured_key_closes_writes_to_callers_without_one(backend: Backend) {
    let combinations: [(&str, Vec<String>, Vec<String>); 4] = [
        ("no keys", vec![], vec![]),
        ("API keys only", vec![KEY_1.into()], vec![]),
        ("admin keys only", vec![], vec![ADMIN.into()]),
        ("both", vec![KEY_1.into()], vec![ADMIN.into()]),
    ];
    for (what, api_keys, admin_keys) in combinations {
        let open = api_keys.is_empty() && admin_keys.is_empty();
        let options = ServerOptions {
            access: Access::new(api_keys, admin_keys, true),
            ..ServerOptions::default()
        };
        let app = TestApp::builder(backend).options(options).start().await;
        let before = app.residue().await;
        for accept in ["application/json", "application/graphql-response+json"] {
            let (status, body) = upload_accepting(&app, accept).await;
            assert_eq!(status, 200, "{what}, {accept}: {body}");
            if open {
                assert!(body["data"]["upload"]["id"].is_string(), "{what}: {body}");
            } else {
                assert_eq!(error_codes(&body), ["UNAUTHENTICATED"], "{what}, {accept}: {body}");
                assert_eq!(body["data"], Value::Null, "{what}: {body}");
            }
        }
        let form = reqwest::multipart::Form::new().text("label", "dog").part(
            "img",
            reqwest::multipart::Part::bytes(fixture("images/none_rocket.jpg")).file_name("r.jpg"),
        );
        let rest = app
            .client
            .post(format!("{}/upload", app.address))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(rest.status(), if open { 200 } else { 401 }, "{what}: petAPI /upload");
        let after = app.residue().await;
        if open {
            assert_eq!((after.0, after.3), (2, 2), "{what}: both uploads stored");
        } else {
            assert_eq!(after, before, "{what}: a refused write stores nothing");
        }
    }
}

on_both_backends!(any_configured_key_closes_writes_to_callers_without_one);

/// A keyless GraphQL upload asking for the response media type `accept`; (status, body).
async fn upload_accepting(app: &TestApp, accept: &str) -> (u16, Value) {
    let operations = json!({
        "query": "mutation($image: Upload!) { upload(label: \"cat\", image: $image) { id } }",
        "variables": { "image": null }
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.image"] }).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(fixture("images/cat_chelsea.png")).file_name("f"),
        );
    let response = crate::support::helpers::http_client()
        .post(format!("{}/graphql", app.address))
        .header("accept", accept)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn debug_data_needs_an_admin_key_not_just_an_api_key() {
    let app = TestApp::builder(Backend::Embedded).options(keyed(true)).start().await;
    let (_, up) = upload_as(&app, Some(KEY_1), "cat", "images/cat_chelsea.png").await;
    let id = up["data"]["upload"]["id"].as_str().unwrap();
    let (_, scan) = app
        .graphql_as(
            Some(KEY_1),
            "mutation($id: ID!) { requestScan(imageId: $id, debug: true) { id } }",
            json!({ "id": id }),
        )
        .await;
    let scan_id = scan["data"]["requestScan"]["id"].as_str().unwrap().to_owned();
    // Polled with this server's admin key (the tests' usual one is not configured here).
    let q = "query($id: ID!) { scanResult(id: $id) { status debug } }";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = app.graphql_as(Some(ADMIN), q, json!({ "id": scan_id })).await;
        if body["data"]["scanResult"]["status"] == "SUCCEEDED" {
            assert!(body["data"]["scanResult"]["debug"]["log"].is_array(), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, as_client) = app.graphql_as(Some(KEY_1), q, json!({ "id": scan_id })).await;
    assert_eq!(error_codes(&as_client), ["FORBIDDEN"], "{as_client}");
    let (_, anonymous) = app.graphql_as(None, q, json!({ "id": scan_id })).await;
    assert_eq!(error_codes(&anonymous), ["FORBIDDEN"]);
}

#[tokio::test]
async fn private_reads_need_a_key_everywhere_but_the_page_and_health() {
    let app = TestApp::builder(Backend::Embedded).options(keyed(false)).start().await;
    let (status, body) = app.graphql_as(None, "{ labels { label } }", json!({})).await;
    assert_eq!((status, error_codes(&body)), (401, vec!["UNAUTHENTICATED".to_owned()]));
    let (status, body) = app.graphql_as(Some(KEY_1), "{ labels { label } }", json!({})).await;
    assert_eq!((status, body.get("errors")), (200, None), "{body}");
    let random = app
        .client
        .get(format!("{}/random?label=cat", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(random.status(), 401);
    for open in ["/healthz", "/graphql"] {
        let response = app.client.get(format!("{}{open}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{open}");
    }

    // Subscriptions: the key goes in connection_init's payload.
    let refused = subscription_reply(&app, json!({})).await;
    // async-graphql closes a refused connection_init with 1002 and the refusal as the reason
    // (graphql-transport-ws recommends 4403; either way the client learns why, and nothing more).
    assert_eq!(
        refused,
        json!({ "type": "closed", "code": 1002, "reason": "this server needs an API key (header x-api-key) for every request" }),
    );
    let accepted = subscription_reply(&app, json!({ "x-api-key": KEY_2 })).await;
    assert_eq!(accepted["type"], "connection_ack", "{accepted}");
}

/// The first reply to a `connection_init` with `payload` (or how the connection ended).
async fn subscription_reply(app: &TestApp, payload: Value) -> Value {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": payload });
    socket.send(Message::text(init.to_string())).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
        Some(Ok(Message::Close(frame))) => json!({
            "type": "closed",
            "code": frame.as_ref().map(|f| u16::from(f.code)),
            "reason": frame.map(|f| f.reason.to_string()),
        }),
        other => json!({ "type": "other", "what": format!("{other:?}") }),
    }
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let introspect = "{ __schema { queryType { name } } }";
    let on = TestApp::builder(Backend::Embedded).without_keys().start().await;
    let (_, body) = on.graphql_as(None, introspect, json!({})).await;
    assert_eq!(body["data"]["__schema"]["queryType"]["name"], "Query", "{body}");
    let off = TestApp::builder(Backend::Embedded)
        .options(ServerOptions {
            introspection: false,
            ..ServerOptions::default()
        })
        .start()
        .await;
    let (_, body) = off.graphql_as(None, introspect, json!({})).await;
    assert!(
        body.get("errors").is_some() || body["data"]["__schema"].is_null(),
        "{body}"
    );
    let (_, normal) = off.graphql_as(None, "{ labels { label } }", json!({})).await;
    assert!(normal.get("errors").is_none(), "{normal}");
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let app = TestApp::builder(Backend::Embedded)
        .options(ServerOptions {
            cors_origins: vec!["https://app.example".into()],
            ..ServerOptions::default()
        })
        .start()
        .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,x-api-key")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed_headers.contains("x-api-key"), "{allowed_headers}");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let none = TestApp::builder(Backend::Embedded).without_keys().start().await;
    let response = none
        .client
        .post(format!("{}/graphql", none.address))
        .header("origin", "https://app.example")
        .json(&json!({ "query": "{ labels { label } }" }))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers().get("access-control-allow-origin").is_none(),
        "no CORS unless configured"
    );
}

#[tokio::test]
async fn the_local_server_limits_each_client_and_says_when_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let backend = pawql::app::BackendSpec::Embedded {
        data_dir: dir.path().to_owned(),
        public_url: address.clone(),
    };
    let router = pawql::app::Wiring::new(backend, Default::default())
        .options(ServerOptions::default())
        .serve(pawql::app::Scanning::InProcess { cat_threshold: 0.2 })
        .await
        .unwrap()
        .door;
    let router = pawql::server::with_rate_limit(
        router,
        RateLimit {
            rate: 0.2,
            burst: 3,
            // The test's client is on loopback, which is not limited by default.
            limit_loopback: true,
        },
    );
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let client = crate::support::helpers::http_client();
    // All five sent at once: a limiter that only held for requests one after another (or
    // let concurrent ones race past the bucket) fails here.
    let barrier = Arc::new(tokio::sync::Barrier::new(5));
    let flood = (0..5).map(|_| {
        let (client, barrier, address) = (client.clone(), barrier.clone(), address.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            client.get(format!("{address}/healthz")).send().await.unwrap()
        })
    });
    let mut statuses = Vec::new();
    for response in futures_util::future::join_all(flood).await {
        let response = response.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!(retry >= 1);
            let body: Value = response.json().await.unwrap();
            assert_eq!(error_codes(&body), ["RATE_LIMITED"]);
        }
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 429, 429], "a burst of 3, then limited");
}

#[tokio::test]
async fn outbound_aws_calls_give_up_instead_of_hanging() {
    // An endpoint that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("x", "x", None, None, "test"))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(Duration::from_millis(300))
        .operation_timeout(Duration::from_secs(2))
        .build();
    let clients = pawql::adapters::aws::AwsClients::with_timeouts(&sdk, timeouts);
    let call = clients
        .dynamodb
        .get_item()
        .table_name("t")
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send();
    let outcome = tokio::time::timeout(Duration::from_secs(60), call).await;
    let err = outcome.expect("the SDK call must end on its own timeout").unwrap_err();
    assert!(format!("{err:?}").to_lowercase().contains("timeout"), "{err:?}");
    drop(silent);

    // And production clients have the limits docs/access.md states: 3 s to connect, 10 s an
    // attempt, 25 s a call with its retries (inside API Gateway's 29 s).
    let defaults = pawql::adapters::aws::default_timeouts();
    assert_eq!(defaults.connect_timeout(), Some(Duration::from_secs(3)));
    assert_eq!(defaults.operation_attempt_timeout(), Some(Duration::from_secs(10)));
    assert_eq!(defaults.operation_timeout(), Some(Duration::from_secs(25)));
}

/// Defaults that let people work: `pawql serve` as the README's first command starts it (every
/// setting at its default), and a plain script on the same machine with no retry logic: 1,000
/// uploads, then 10,000 queries. Every request succeeds; a remote client would still be
/// limited (`a_bucket_allows_its_burst_then_its_rate_per_client`, and the flood above).
#[tokio::test]
async fn bulk_work_from_this_machine_succeeds_at_default_settings() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = crate::deployment::Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_pawql"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path())
            .env_remove("PAWQL_RATE_LIMIT")
            .env_remove("PAWQL_RATE_BURST")
            .env_remove("PAWQL_RATE_LIMIT_LOOPBACK")
            .env_remove("PAWQL_API_KEYS")
            .env_remove("PAWQL_ADMIN_KEYS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let address = format!("http://127.0.0.1:{port}");
    let client = crate::support::helpers::http_client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while client.get(format!("{address}/healthz")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "pawql serve did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut refused = Vec::new();
    for n in 0..1_000u32 {
        let form = reqwest::multipart::Form::new().text("label", "cat").part(
            "img",
            reqwest::multipart::Part::bytes(crate::random::png_number(n).to_vec()).file_name("p.png"),
        );
        let response = client
            .post(format!("{address}/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            refused.push((n, response.status(), response.text().await.unwrap()));
        }
    }
    assert!(
        refused.is_empty(),
        "{} of 1,000 uploads refused: {:?}",
        refused.len(),
        refused.first()
    );
    for n in 0..10_000u32 {
        let response = client
            .post(format!("{address}/graphql"))
            .json(&serde_json::json!({ "query": "{ randomImage(label: \"cat\") { id } }" }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            status == 200 && body.get("errors").is_none() && body["data"]["randomImage"]["id"].is_string(),
            "query {n}: {status} {body}"
        );
    }
}
