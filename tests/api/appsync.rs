//! The AppSync door (`PAWQL_HANDLER=appsync`): AppSync's direct Lambda resolver events, single
//! (`Invoke`) and batched (`BatchInvoke`), answered on the schema `/graphql` serves.
//!
//! On moto the door is the real binary, run as Lambda runs it against a stand-in Runtime API
//! on loopback (events handed out by `…/invocation/next`, answers and function errors
//! received as Lambda receives them). On the embedded backend, which no Lambda runs on, the
//! same door is built in process (`Wiring::appsync`) and answers the same events. The
//! batched-read count is taken in process on both, where the scan store and the DynamoDB
//! client can be watched.

mod harness;

use std::sync::Arc;

use pawql::appsync::AppSyncAccess;
use serde_json::{json, Value};

use crate::support::fault_injection::{Fault, Faults};
use crate::support::helpers::{spawn_app, Backend};
use crate::support::hooked::Hooked;
use crate::support::moto::MotoServer;
use harness::{in_process, in_process_with, Counter, DynamoCalls, Function};

/// The admin role of these tests' AppSync door, and the user-pool group that writes.
const ADMIN_ROLE: &str = "arn:aws:iam::123456789012:role/ops/pawql-appsync-admin";
const WRITERS: &str = "uploaders";

fn access() -> AppSyncAccess {
    AppSyncAccess {
        admin_arns: vec![ADMIN_ROLE.into()],
        writer_groups: vec![WRITERS.into()],
        ..AppSyncAccess::default()
    }
}

/// A direct Lambda resolver event, as AppSync sends it.
fn event(parent: &str, field: &str, arguments: Value, selection: &str, source: Value, identity: Value) -> Value {
    json!({
        "arguments": arguments,
        "identity": identity,
        "source": source,
        "request": { "headers": { "x-api-key": "da2-appsync-managed-key" }, "domainName": null },
        "info": {
            "fieldName": field,
            "parentTypeName": parent,
            "selectionSetList": [],
            "selectionSetGraphQL": selection,
            "variables": {},
        },
        "stash": {},
        "prev": null,
    })
}

fn query(field: &str, arguments: Value, selection: &str) -> Value {
    event("Query", field, arguments, selection, Value::Null, Value::Null)
}

/// The scan of the image `source`, as AppSync asks `Image.scan` of a parent.
fn image_scan(source: Value, selection: &str) -> Value {
    event("Image", "scan", json!({}), selection, source, Value::Null)
}

fn iam(arn: &str) -> Value {
    json!({ "accountId": "123456789012", "userArn": arn, "sourceIp": ["203.0.113.7"], "username": "AROA:s" })
}

fn user_in(groups: &[&str]) -> Value {
    json!({
        "sub": "7d8c-user", "username": "ada", "groups": groups, "sourceIp": ["203.0.113.7"],
        "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool",
        "defaultAuthStrategy": "ALLOW", "claims": {},
    })
}

/// An image's fields as both doors answer them (URLs left out: presigned ones carry the time).
const FIELDS: &str = "id sha256 label weight contentType width height byteSize inPool heldReason createdAt placeholder variants { size width height byteSize }";

async fn single_invokes_answer_what_graphql_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let cat = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let id = cat["id"].as_str().unwrap().to_owned();
    let over_http = app
        .data(
            &format!("query($id: ID!) {{ randomImage(label: \"cat\") {{ {FIELDS} }} image(id: $id) {{ {FIELDS} }} labels {{ label imageCount totalWeight }} }}"),
            json!({ "id": id }),
        )
        .await;
    let mut function = Function::over(app, access()).await;

    let random = function
        .value(query(
            "randomImage",
            json!({ "label": "cat" }),
            &format!("{{ {FIELDS} }}"),
        ))
        .await;
    assert_eq!(random, over_http["randomImage"], "the one cat, as /graphql gives it");
    let image = function
        .value(query("image", json!({ "id": id }), &format!("{{ {FIELDS} }}")))
        .await;
    assert_eq!(image, over_http["image"]);
    let labels = function
        .value(query("labels", json!({}), "{ label imageCount totalWeight }"))
        .await;
    assert_eq!(labels, over_http["labels"]);

    // AppSync applies the client's aliases itself: the answer is keyed by field names, and
    // carries what `Image.scan`'s own resolver reads from its parent even when not asked.
    let aliased = function
        .value(query(
            "image",
            json!({ "id": id }),
            "{ w: weight heavy: weight scan { status } }",
        ))
        .await;
    assert_eq!(aliased, json!({ "weight": 0.5, "id": id, "sha256": cat["sha256"] }));
    let url = function
        .value(query("image", json!({ "id": id }), "{ url(size: THUMB) }"))
        .await;
    assert!(url["url"].as_str().unwrap().starts_with("http"), "{url}");
    assert_eq!(
        function
            .value(query(
                "image",
                json!({ "id": format!("cat-{}", "0".repeat(64)) }),
                "{ id }"
            ))
            .await,
        Value::Null
    );
}

async fn a_batch_of_image_scans_is_one_batched_read_answered_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut images = Vec::new();
    for file in [
        "images/cat_chelsea.png",
        "images/dog_kde_golden.png",
        "images/cat_kde_tabby.png",
    ] {
        let label = if file.contains("dog") { "dog" } else { "cat" };
        images.push(app.upload(label, file, 0.5).await);
    }
    for image in &images[..2] {
        let scan = crate::scan::request_scan_of(&app, image["id"].as_str().unwrap(), false, false).await;
        crate::scan::wait_for_final(&app, scan["id"].as_str().unwrap(), false).await;
    }
    let selection = "{ id status isCat labels { name } }";
    let mut expected = Vec::new();
    for image in &images {
        let data = app
            .data(
                &format!("query($id: ID!) {{ image(id: $id) {{ scan {selection} }} }}"),
                json!({ "id": image["id"] }),
            )
            .await;
        expected.push(data["image"]["scan"].clone());
    }
    assert!(
        expected[0]["status"] == "SUCCEEDED" && expected[2].is_null(),
        "{expected:?}"
    );

    let scans = Arc::new(Counter::default());
    let dynamo = DynamoCalls::default();
    let clients = match backend {
        Backend::Embedded => None,
        Backend::Aws => {
            let plain = MotoServer::shared().await.clients().await;
            let dynamodb = plain.dynamodb.config().to_builder().interceptor(dynamo.clone()).build();
            Some(pawql::adapters::aws::AwsClients {
                dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
                ..plain
            })
        }
    };
    let counted = scans.clone();
    let (door, _kept) = in_process_with(app, access(), clients, move |ports| {
        let parts = ports.scanning.as_mut().expect("the door scans");
        parts.scans = Arc::new(Hooked::new(parts.scans.clone(), counted));
    })
    .await;

    // `randomImages(count: 100) { scan { status } }` through AppSync: the list's own call
    // leaves the scans to `Image.scan`'s resolver, and hands it each parent's keys...
    let list = door
        .answer(query(
            "randomImages",
            json!({ "label": "cat", "count": 100 }),
            "{ scan { status } }",
        ))
        .await
        .unwrap();
    let parents = list.as_array().unwrap();
    assert_eq!(parents.len(), 100);
    assert_eq!(
        scans.of("scans.get_many") + scans.of("scans.get"),
        0,
        "no scan read for the list"
    );
    // ...whose batch of 100 is one read.
    let batch: Vec<Value> = parents.iter().map(|p| image_scan(p.clone(), "{ status }")).collect();
    let answer = door.answer(Value::Array(batch)).await.unwrap();
    for (parent, item) in parents.iter().zip(answer.as_array().unwrap()) {
        let scanned = parent["id"] == images[0]["id"];
        assert_eq!(item["data"].is_null(), !scanned, "{parent} {item}");
    }
    assert_eq!(scans.of("scans.get_many"), 1, "one read for a hundred parents");
    dynamo.0.lock().unwrap().clear();

    // As AppSync batches `Image.scan`: one event per parent, in the list's order (repeats
    // included), the parent's answer as `source`.
    let source = |i: usize| json!({ "id": images[i]["id"], "sha256": images[i]["sha256"], "label": "cat" });
    let batch = vec![
        image_scan(source(2), selection),
        image_scan(source(0), selection),
        image_scan(json!({ "id": images[1]["id"] }), selection),
        image_scan(source(0), selection),
        image_scan(json!({ "label": "cat" }), selection),
    ];
    let answer = door.answer(Value::Array(batch)).await.unwrap();
    let items = answer.as_array().unwrap();
    assert_eq!(items[0], json!({ "data": null }), "never scanned");
    assert_eq!(items[1], json!({ "data": expected[0] }));
    assert_eq!(items[2], json!({ "data": expected[1] }), "the hash read from the id");
    assert_eq!(items[3], json!({ "data": expected[0] }));
    assert_eq!(items[4]["data"], Value::Null);
    assert_eq!(items[4]["errorType"], "BAD_USER_INPUT", "{}", items[4]);
    assert_eq!(scans.of("scans.get_many"), 2, "one batched read for the whole batch");
    assert_eq!(scans.of("scans.get"), 0, "and no read per parent");
    if backend == Backend::Aws {
        assert_eq!(
            *dynamo.0.lock().unwrap(),
            ["BatchGetItem"],
            "one BatchGetItem, nothing else"
        );
    }
}

async fn internal_errors_reach_appsync_as_their_code_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    let cat = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let faults = Arc::new(Faults::default());
    let armed = faults.clone();
    let (door, _kept) = in_process(app, access(), move |ports| {
        ports.tables = Arc::new(Hooked::new(ports.tables.clone(), armed.clone()));
        let parts = ports.scanning.as_mut().expect("the door scans");
        parts.scans = Arc::new(Hooked::new(parts.scans.clone(), armed));
    })
    .await;
    faults.arm("tables.get_image", 1, Fault::Error);
    let error = door
        .answer(query("image", json!({ "id": cat["id"] }), "{ id }"))
        .await
        .unwrap_err();
    assert_eq!(error.error_type, "INTERNAL_SERVER_ERROR");
    assert_eq!(error.error_message, "internal server error", "no internal detail");

    // Two selections, two reads (one each), both failing: every item says so on its own.
    faults.arm("scans.get_many", 2, Fault::Error);
    let source = json!({ "id": cat["id"], "sha256": cat["sha256"] });
    let batch = json!([
        image_scan(source.clone(), "{ id }"),
        image_scan(source.clone(), "{ status }"),
        image_scan(source, "{ id }"),
    ]);
    let answer = door.answer(batch).await.unwrap();
    for item in answer.as_array().unwrap() {
        assert_eq!(
            *item,
            json!({ "data": null, "errorType": "INTERNAL_SERVER_ERROR", "errorMessage": "internal server error" })
        );
    }
    assert!(!answer.to_string().contains("injected"), "{answer}");
}

on_both_backends!(
    single_invokes_answer_what_graphql_answers,
    a_batch_of_image_scans_is_one_batched_read_answered_in_order,
    internal_errors_reach_appsync_as_their_code_alone,
);

#[tokio::test]
async fn writes_need_an_identity_named_as_a_writer() {
    let app = spawn_app(Backend::Aws).await;
    let cat = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let mut function = Function::over(app, access()).await;
    let request_scan = |identity: Value| {
        event(
            "Mutation",
            "requestScan",
            json!({ "imageId": cat["id"] }),
            "{ id status }",
            Value::Null,
            identity,
        )
    };

    // An API key names nobody: refused before anything runs.
    let (code, message) = function.invoke(request_scan(Value::Null)).await.unwrap_err();
    assert_eq!(code, "UNAUTHENTICATED", "{message}");
    // A principal this deployment does not name, and a user outside the writers' group.
    let stranger = iam("arn:aws:sts::123456789012:assumed-role/someone-else/session");
    assert_eq!(
        function.invoke(request_scan(stranger)).await.unwrap_err().0,
        "FORBIDDEN"
    );
    assert_eq!(
        function
            .invoke(request_scan(user_in(&["readers"])))
            .await
            .unwrap_err()
            .0,
        "FORBIDDEN"
    );

    // A session of the admin role (whatever the role's path) writes, as a writer's group does.
    let admin = iam("arn:aws:sts::123456789012:assumed-role/pawql-appsync-admin/ci-run");
    let scan = function.value(request_scan(admin.clone())).await;
    assert_eq!(scan, json!({ "id": cat["sha256"], "status": "PENDING" }));
    let nothing = event(
        "Mutation",
        "deleteImage",
        json!({ "id": format!("cat-{}", "0".repeat(64)) }),
        "",
        Value::Null,
        user_in(&["readers", WRITERS]),
    );
    assert_eq!(function.value(nothing).await, json!(false));

    // Debug data is the admin's: a reader's scan read refuses it with the API's own code.
    let debug = |identity: Value| {
        event(
            "Query",
            "scanResult",
            json!({ "id": cat["sha256"] }),
            "{ id debug }",
            Value::Null,
            identity,
        )
    };
    assert_eq!(function.invoke(debug(Value::Null)).await.unwrap_err().0, "FORBIDDEN");
    assert_eq!(
        function.value(debug(admin)).await,
        json!({ "id": cat["sha256"], "debug": null })
    );

    // A BatchInvoke through the runtime: one item per event, in order, errors per item.
    let source = json!({ "id": cat["id"], "sha256": cat["sha256"] });
    let batch = json!([
        image_scan(source.clone(), "{ status }"),
        image_scan(json!({}), "{ status }"),
        image_scan(source, "{ id }"),
    ]);
    let items = function.value(batch).await;
    assert_eq!(items[0], json!({ "data": { "status": "PENDING" } }));
    assert_eq!(items[1]["errorType"], "BAD_USER_INPUT", "{items}");
    assert_eq!(items[2], json!({ "data": { "id": cat["sha256"] } }));
    // An event AppSync would never send is the client's error, not the function's crash.
    assert_eq!(
        function.invoke(json!({ "arguments": {} })).await.unwrap_err().0,
        "BAD_USER_INPUT"
    );
}
