//! `Image.scan` behind its request's DataLoader: however many images a response holds, and
//! however they got there (one list, or aliased `image(id:)` fields), their scans cost one
//! `BatchGetItem`, on every door that runs GraphQL: `POST /graphql` (JSON and multipart),
//! `GET /graphql`, `/graphql/stream`, `/graphql/ws`, and the Lambda API function's router.
//! On embedded, the same count is the scan store's batched read, seen through a fault.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures_util::FutureExt;
use pawql::app::{BackendSpec, Wiring};
use serde_json::{json, Value};

use super::{acting_as, logged_clients, RequestLog};
use crate::support::fault_injection::{Fault, Faults};
use crate::support::helpers::{error_codes, Backend, TestApp};

/// 100 draws of two images.
const DRAWS: &str = "{ randomImages(label: \"cat\", count: 100) { id scan { status } } }";

/// Two images by id, aliased: each field reads its own row, then both scans are one read (the
/// prefetch `randomImages` did before the DataLoader never covered this).
fn aliased(a: &str, b: &str) -> String {
    format!("{{ a: image(id: \"{a}\") {{ id scan {{ status }} }} b: image(id: \"{b}\") {{ id scan {{ status }} }} }}")
}

/// A door: runs a query, returns its `data`.
type Door<'a> = Box<dyn Fn(String) -> futures_util::future::LocalBoxFuture<'a, Value> + 'a>;

#[tokio::test]
async fn the_scans_of_a_response_are_one_batched_read_on_every_door() {
    let log = RequestLog::default();
    let clients = logged_clients(&log).await;
    let app = TestApp::builder(Backend::Aws).clients(clients.clone()).start().await;
    let mut ids = Vec::new();
    for file in ["images/cat_chelsea.png", "images/cat_kde_tabby.png"] {
        let image = app.upload("cat", file, 0.5).await;
        let id = image["id"].as_str().unwrap().to_owned();
        let scan = crate::scan::request_scan_of(&app, &id, false, false).await;
        crate::scan::wait_for_final(&app, scan["id"].as_str().unwrap(), false).await;
        ids.push(id);
    }
    // The Lambda API function on the same stage, as `pawql lambda` builds it.
    let lambda = Wiring::new(
        BackendSpec::aws(
            &acting_as(&clients, &[crate::iam::Function::Api], app.stage()),
            app.stage(),
        ),
        resolvers::CatalogSettings::default(),
    )
    .lambda_api(80.0)
    .await
    .unwrap()
    .door;

    let doors: Vec<(&str, Door)> = vec![
        ("POST /graphql, JSON", Box::new(|q| json_post(&app, q).boxed_local())),
        (
            "POST /graphql, multipart",
            Box::new(|q| multipart_post(&app, q).boxed_local()),
        ),
        ("GET /graphql", Box::new(|q| get(&app, q).boxed_local())),
        ("POST /graphql/stream", Box::new(|q| streamed(&app, q).boxed_local())),
        ("/graphql/ws", Box::new(|q| over_websocket(&app, q).boxed_local())),
        (
            "the Lambda API function",
            Box::new(|q| on_lambda(&lambda, q).boxed_local()),
        ),
    ];
    for (door, run) in &doors {
        log.take();
        let drawn = run(DRAWS.to_owned()).await;
        assert_eq!(
            log.take(),
            ["dynamodb.BatchGetItem"; 3],
            "{door}: shard items, the drawn slots, then all 100 drawn images' scans in one BatchGetItem"
        );
        let drawn = drawn["randomImages"].as_array().unwrap();
        assert_eq!(drawn.len(), 100, "{door}");
        let distinct: BTreeSet<&str> = drawn.iter().map(|image| image["id"].as_str().unwrap()).collect();
        assert_eq!(distinct.len(), 2, "{door}: 100 draws of two equal weights meet both");
        assert!(
            drawn.iter().all(|image| image["scan"]["status"] == "SUCCEEDED"),
            "{door}: each drawn image got its scan: {drawn:?}"
        );

        let both = run(aliased(&ids[0], &ids[1])).await;
        assert_eq!(
            log.take(),
            ["dynamodb.GetItem", "dynamodb.GetItem", "dynamodb.BatchGetItem"],
            "{door}: each image's row, then both scans in one BatchGetItem (it was a GetItem each)"
        );
        for (alias, id) in [("a", &ids[0]), ("b", &ids[1])] {
            assert_eq!(both[alias]["id"], json!(id), "{door}: {both}");
            assert_eq!(both[alias]["scan"]["status"], "SUCCEEDED", "{door}: {both}");
        }
    }
}

/// On embedded, the read is the scan store's `get_many`: failing it once fails the scans of
/// both aliased images together, and their images still answer (a scan is nullable).
#[tokio::test]
async fn on_embedded_the_scans_of_a_response_are_one_batched_read() {
    let faults = Arc::new(Faults::default());
    let app = TestApp::builder(Backend::Embedded).faults(faults.clone()).start().await;
    let mut ids = Vec::new();
    for file in ["images/cat_chelsea.png", "images/cat_kde_tabby.png"] {
        let image = app.upload("cat", file, 0.5).await;
        let id = image["id"].as_str().unwrap().to_owned();
        let scan = crate::scan::request_scan_of(&app, &id, false, false).await;
        crate::scan::wait_for_final(&app, scan["id"].as_str().unwrap(), false).await;
        ids.push(id);
    }
    for query in [DRAWS.to_owned(), aliased(&ids[0], &ids[1])] {
        faults.injected.lock().unwrap().clear();
        faults.arm("scans.get_many", 1, Fault::Error);
        faults.arm("scans.get", 1, Fault::Error);
        let (status, body) = app.graphql(&query, json!({})).await;
        faults.clear();
        assert_eq!(status, 200, "{body}");
        assert_eq!(faults.injected("scans.get"), 0, "no scan read alone: {query}");
        assert_eq!(faults.injected("scans.get_many"), 1, "one batched read: {query}");
        let images: Vec<&Value> = match body["data"].get("randomImages") {
            Some(drawn) => drawn.as_array().unwrap().iter().collect(),
            None => vec![&body["data"]["a"], &body["data"]["b"]],
        };
        assert!(
            images
                .iter()
                .all(|image| image["id"].is_string() && image["scan"].is_null()),
            "every scan failed with the one read, every image answered: {body}"
        );
        let codes = error_codes(&body);
        assert_eq!(codes.len(), images.len(), "one error per scan: {body}");
        assert!(codes.iter().all(|code| code == "INTERNAL_SERVER_ERROR"), "{body}");
    }
}

async fn json_post(app: &TestApp, query: String) -> Value {
    app.data(&query, json!({})).await
}

async fn multipart_post(app: &TestApp, query: String) -> Value {
    let form = reqwest::multipart::Form::new()
        .text("operations", json!({ "query": query }).to_string())
        .text("map", "{}");
    let (status, body) = app.post_form("/graphql", form).await;
    assert_eq!(status, 200, "{body}");
    data_of(body)
}

async fn get(app: &TestApp, query: String) -> Value {
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", query)])
        .send()
        .await
        .unwrap();
    data_of(response.json().await.unwrap())
}

async fn streamed(app: &TestApp, query: String) -> Value {
    let response = app
        .client
        .post(format!("{}/graphql/stream", app.address))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let mut text = response.text().await.unwrap().replace('\r', "");
    text.push_str("\n\n");
    let events = pawql::client::events::take_events(&mut text);
    let next = events.iter().find(|e| e.event == "next").expect("a `next` event");
    data_of(serde_json::from_str(&next.data).unwrap())
}

async fn over_websocket(app: &TestApp, query: String) -> Value {
    let mut results = crate::scan::subscribe_at(&app.address, &query, json!({})).await;
    assert_eq!(results.len(), 1, "a query answers once: {results:?}");
    data_of(results.remove(0))
}

async fn on_lambda(router: &axum::Router, query: String) -> Value {
    let (status, body) = crate::lambda::invoke_graphql(router, None, &query).await;
    assert_eq!(status, 200, "{body}");
    data_of(body)
}

/// `data` of a response that must have no errors.
fn data_of(body: Value) -> Value {
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}
