//! `POST /graphql/stream`: GraphQL over Server-Sent Events (graphql-sse, distinct connections),
//! and the batch operations it carries best: `scanResults(ids)` and `scansUpdated(ids)`.

use futures_util::StreamExt;
use pawql::client::operations::{scans_updated, ScansUpdated};
use serde_json::{json, Value};

use crate::support::helpers::{error_codes, spawn_app, Backend, TestApp};

/// Raw events of one streamed operation: (event name, data).
async fn events(app: &TestApp, query: &str, variables: Value) -> (u16, Vec<(String, String)>) {
    let response = app
        .client
        .post(format!("{}/graphql/stream", app.address))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let mut text = response.text().await.unwrap().replace('\r', "");
    text.push_str("\n\n");
    let parsed = pawql::client::events::take_events(&mut text)
        .into_iter()
        .map(|e| (e.event, e.data))
        .collect();
    (status, parsed)
}

async fn upload_three(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for file in [
        "images/cat_chelsea.png",
        "images/dog_kde_golden.png",
        "images/none_rocket.jpg",
    ] {
        let image = app.upload("cat", file, 0.5).await;
        let scan = crate::scan::request_scan_of(app, image["id"].as_str().unwrap(), false, false).await;
        ids.push(scan["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn a_batch_is_read_in_one_request_and_followed_on_one_stream(backend: Backend) {
    let app = spawn_app(backend).await;
    let ids = upload_three(&app).await;
    let unknown = "f".repeat(64);

    // Followed to the end on one stream: every scan sent at least once, each last time final,
    // and the stream completes by itself.
    let updates: Vec<_> = app
        .typed()
        .subscribe::<ScansUpdated>(scans_updated::Variables { scan_ids: ids.clone() })
        .await
        .unwrap()
        .collect()
        .await;
    let mut last: std::collections::HashMap<String, String> = Default::default();
    for update in updates {
        let scan = update.unwrap().scans_updated;
        last.insert(scan.id, format!("{:?}", scan.status));
    }
    assert_eq!(last.len(), 3, "{last:?}");
    assert!(last.values().all(|status| status == "SUCCEEDED"), "{last:?}");

    // Read back together, in the order asked, null where there is none.
    let mut asked = ids.clone();
    asked.insert(1, unknown.clone());
    let data = app
        .data(
            "query($ids: [ID!]!) { scanResults(ids: $ids) { id status isCat } }",
            json!({ "ids": asked }),
        )
        .await;
    let results = data["scanResults"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[1], Value::Null);
    for (result, id) in [&results[0], &results[2], &results[3]].iter().zip(&ids) {
        assert_eq!(result["id"], id.as_str());
        assert_eq!(result["status"], "SUCCEEDED");
    }
    assert_eq!(results[0]["isCat"], true, "the cat photo");

    // Limits and malformed ids are the client's error; so is following a scan that is not there.
    let many: Vec<String> = (0..101).map(|i| format!("{i:064x}")).collect();
    for (query, variables) in [
        (
            "query($ids: [ID!]!) { scanResults(ids: $ids) { id } }",
            json!({ "ids": many }),
        ),
        (
            "query($ids: [ID!]!) { scanResults(ids: $ids) { id } }",
            json!({ "ids": ["nope"] }),
        ),
    ] {
        let (_, body) = app.graphql(query, variables).await;
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body}");
    }
    let (status, events) = events(
        &app,
        "subscription($ids: [ID!]!) { scansUpdated(ids: $ids) { id } }",
        json!({ "ids": [ids[0], unknown] }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(events.len(), 2, "{events:?}");
    let next: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(error_codes(&next), ["NOT_FOUND"], "{next}");
    assert_eq!(events[1].0, "complete");
}

on_both_backends!(a_batch_is_read_in_one_request_and_followed_on_one_stream);

#[tokio::test]
async fn the_stream_endpoint_speaks_graphql_sse_and_keeps_the_access_rules() {
    let app = spawn_app(Backend::Embedded).await;
    // A query: one `next`, then `complete`.
    let (status, events) = events(&app, "{ labels { label imageCount } }", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        events.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["next", "complete"]
    );
    let next: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(next["data"]["labels"][0]["label"], "cat", "{next}");

    // Without `Accept: text/event-stream`: 406, saying what to send.
    let plain = app
        .client
        .post(format!("{}/graphql/stream", app.address))
        .json(&json!({ "query": "{ labels { label } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 406);
    assert!(plain.text().await.unwrap().contains("text/event-stream"));

    // An unknown key is refused before anything runs; a keyless write is refused as on /graphql.
    let stranger = crate::support::helpers::keyed_http_client(Some("not-a-key"))
        .post(format!("{}/graphql/stream", app.address))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "{ labels { label } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    let keyless = crate::support::helpers::http_client()
        .post(format!("{}/graphql/stream", app.address))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "mutation { setWeight(id: \"cat-00\", weight: 0.5) { id } }" }))
        .send()
        .await
        .unwrap();
    let mut text = keyless.text().await.unwrap();
    let events = pawql::client::events::take_events(&mut text);
    let next: Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(error_codes(&next), ["UNAUTHENTICATED"], "{next}");
}

/// The npm `graphql-sse` client, run by Node against the local server: it follows a scan from
/// `requestScan` to its final event while the worker finishes it.
#[tokio::test]
async fn the_npm_graphql_sse_client_follows_a_scan_to_its_end() {
    let app = spawn_app(Backend::Embedded).await;
    let image = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let scan = crate::scan::request_scan_of(&app, image["id"].as_str().unwrap(), false, false).await;
    let id = scan["id"].as_str().unwrap().to_owned();
    let seen = crate::support::helpers::run_node_json(
        "node",
        vec![
            "tests/node/graphql-sse.mjs".to_owned(),
            format!("{}/graphql/stream", app.address),
            "subscription($id: ID!) { scanUpdated(id: $id) { id status isCat } }".to_owned(),
            json!({ "id": id }).to_string(),
            app.key.clone().unwrap_or_default(),
        ],
    )
    .await;
    assert_eq!(seen["complete"], true, "{seen}");
    let last_update = &seen["results"].as_array().unwrap().last().unwrap()["data"]["scanUpdated"];
    assert_eq!(last_update["status"], "SUCCEEDED", "{seen}");
    assert_eq!(last_update["isCat"], true, "{seen}");
}
