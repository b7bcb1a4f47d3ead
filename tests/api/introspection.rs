//! Introspection as GraphiQL, graphql-codegen and IDEs send it: graphql-js's
//! `getIntrospectionQuery` (nine levels of `ofType`, committed as text in
//! `tests/fixtures/introspection/`), answered on every door that runs queries, while an
//! over-deep ordinary query is refused as before, and `--introspection false` refuses it with
//! a code.

use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use pawql::adapters::aws;
use pawql::app::{BackendSpec, Wiring};
use pawql::server::ServerOptions;
use resolvers::CatalogSettings;
use serde_json::{json, Value};

use crate::support::helpers::{error_codes, fixture, Backend, TestApp};
use crate::support::moto::{unique_stage, MotoServer};

/// The query with every option this schema answers (descriptions, `specifiedByURL`,
/// `isRepeatable`, the schema's description, deprecated input values).
fn full_query() -> String {
    String::from_utf8(fixture("introspection/graphql-js-full.graphql")).unwrap()
}

/// The query at graphql-js's defaults (what graphql-codegen and most tools send).
fn default_query() -> String {
    String::from_utf8(fixture("introspection/graphql-js-default.graphql")).unwrap()
}

/// Asserts `body` is a whole introspection answer: no errors, and `Query` with its fields.
fn assert_schema(body: &Value, door: &str) {
    assert!(body.get("errors").is_none(), "{door}: {body}");
    let schema = &body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "Query", "{door}: {body}");
    let query = schema["types"]
        .as_array()
        .and_then(|types| types.iter().find(|t| t["name"] == "Query"))
        .unwrap_or_else(|| panic!("{door}: no Query type in {body}"));
    let fields: Vec<&str> = query["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"randomImage"), "{door}: {fields:?}");
}

/// A query 13 fields deep (one past the limit) that is not introspection.
fn over_deep_ordinary_query() -> String {
    format!(
        "{{ randomImage(label: \"cat\") {{ {} id {} }} }}",
        "scan { ".repeat(11),
        "}".repeat(11)
    )
}

#[tokio::test]
async fn the_standard_introspection_query_is_answered_on_every_door() {
    let app = TestApp::builder(Backend::Embedded).without_keys().start().await;
    for query in [full_query(), default_query()] {
        let (status, body) = app.graphql(&query, json!({})).await;
        assert_eq!(status, 200);
        assert_schema(&body, "POST /graphql");
        let size = body.to_string().len();
        assert!(size < 200_000, "the whole schema is {size} bytes");
    }
    let query = full_query();

    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", query.as_str()), ("operationName", "IntrospectionQuery")])
        .header("accept", "application/graphql-response+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_schema(&response.json().await.unwrap(), "GET /graphql");

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
    let next = events.iter().find(|e| e.event == "next").expect("a next event");
    assert_schema(&serde_json::from_str(&next.data).unwrap(), "/graphql/stream");

    assert_schema(&over_the_websocket(&app, &query).await, "/graphql/ws");
}

/// The first result of `query` run over `/graphql/ws` (graphql-transport-ws).
async fn over_the_websocket(app: &TestApp, query: &str) -> Value {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let messages = [
        json!({ "type": "connection_init", "payload": {} }),
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
    ];
    for message in messages {
        socket.send(Message::text(message.to_string())).await.unwrap();
    }
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer within 10 s");
        let Some(Ok(Message::Text(text))) = message else {
            panic!("the socket ended: {message:?}");
        };
        let reply: Value = serde_json::from_str(&text).unwrap();
        match reply["type"].as_str() {
            Some("next") => return reply["payload"].clone(),
            Some("connection_ack" | "ping" | "pong") => continue,
            _ => panic!("{reply}"),
        }
    }
}

#[tokio::test]
async fn an_over_deep_ordinary_query_is_still_refused_with_its_code() {
    let app = TestApp::builder(Backend::Embedded).without_keys().start().await;
    let (status, body) = app.graphql(&over_deep_ordinary_query(), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"][0]["message"], "Query is nested too deep.", "{body}");
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body}");

    // Introspection alongside an ordinary field is counted in full, as before.
    let mixed = full_query().replacen("__schema {", "labels { label } __schema {", 1);
    let (_, body) = app.graphql(&mixed, json!({})).await;
    assert_eq!(body["errors"][0]["message"], "Query is nested too deep.", "{body}");
    assert_eq!(body["data"], Value::Null, "{body}");
}

/// Just the access settings, parsed as `pawql serve` parses its flags.
#[derive(Parser)]
struct AccessFlags {
    #[command(flatten)]
    access: pawql::config::AccessArgs,
}

#[tokio::test]
async fn the_introspection_setting_switches_it_off_with_a_code() {
    let on = AccessFlags::try_parse_from(["pawql"]).unwrap().access.options();
    assert!(on.introspection, "on unless switched off");
    let off = AccessFlags::try_parse_from(["pawql", "--introspection", "false"])
        .unwrap()
        .access
        .options();
    assert!(!off.introspection);

    let app = TestApp::builder(Backend::Embedded).options(off).start().await;
    let (_, body) = app.graphql(&full_query(), json!({})).await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(error_codes(&body), ["FORBIDDEN"], "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("introspection") && message.contains("PAWQL_INTROSPECTION"),
        "the refusal says what and where: {message}"
    );
    let (_, normal) = app.graphql("{ labels { label } __typename }", json!({})).await;
    assert!(normal.get("errors").is_none(), "{normal}");
}

#[tokio::test]
async fn the_lambda_answers_the_standard_introspection_query() {
    let clients = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&clients, &stage).await.unwrap();
    let clients = crate::iam::enforcing(&clients, &[crate::iam::Function::Api], &stage);
    let router = Wiring::new(BackendSpec::aws(&clients, &stage), CatalogSettings::default())
        .options(ServerOptions::default())
        .lambda_api(80.0)
        .await
        .unwrap()
        .door;
    let (status, body) = crate::lambda::invoke_graphql(&router, None, &full_query()).await;
    assert_eq!(status, 200, "{body}");
    assert_schema(&body, "the Lambda");
    let (_, body) = crate::lambda::invoke_graphql(&router, None, &over_deep_ordinary_query()).await;
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body}");
}
