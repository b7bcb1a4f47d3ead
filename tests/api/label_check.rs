//! The label check (`PAWQL_VERIFY_CATS`): images uploaded under `cat` enter the random pool
//! only once a scan of their bytes finds a cat; the others are kept, held out, with the reason.
//! In-process on both backends, and on AWS with the stream-driven scan handler.

use std::time::{Duration, Instant};

use resolvers::CatalogSettings;
use serde_json::{json, Value};

use crate::scan::{request_scan_of, wait_for_final};
use crate::scan_stream::{offline_detector, stream_scanner_with, StreamReader};
use crate::support::helpers::{Backend, TestApp};

const FIELDS: &str = "id weight inPool heldReason";

fn checked() -> CatalogSettings {
    let mut settings = CatalogSettings::default();
    settings.label_check = Some(settings.labels.parse("cat").unwrap());
    settings
}

/// Uploads a fixture; returns the image as it stands right after.
async fn upload(app: &TestApp, label: &str, file: &str) -> Value {
    let content_type = if file.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let (status, body) = app
        .upload_raw(
            label,
            Some(0.5),
            file,
            content_type,
            crate::support::helpers::fixture(file),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    image(app, body["data"]["upload"]["id"].as_str().unwrap()).await
}

async fn image(app: &TestApp, id: &str) -> Value {
    let q = format!("query($id: ID!) {{ image(id: $id) {{ {FIELDS} }} }}");
    app.data(&q, json!({ "id": id })).await["image"].clone()
}

/// Polls the image until `done` holds.
async fn wait_for_image(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let current = image(app, id).await;
        if done(&current) {
            return current;
        }
        assert!(Instant::now() < deadline, "image {id} never settled: {current}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn random_cat_ids(app: &TestApp) -> Vec<String> {
    let data = app
        .data("{ randomImages(label: \"cat\", count: 50) { id } }", json!({}))
        .await;
    data["randomImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn cats_enter_the_pool_only_once_a_scan_confirms_a_cat(backend: Backend) {
    let app = TestApp::builder(backend).settings(checked()).start().await;
    let cat = upload(&app, "cat", "images/cat_chelsea.png").await;
    let coffee = upload(&app, "cat", "images/none_coffee.png").await;
    let dog = upload(&app, "dog", "images/dog_kde_golden.png").await;
    assert_eq!(dog["inPool"], true, "other labels are not checked: {dog}");
    for held in [&cat, &coffee] {
        // Held at upload, or already settled if the worker was that quick.
        let reason = held["heldReason"].as_str().unwrap_or("");
        assert!(held["inPool"] == true || reason.starts_with("AWAITING_SCAN"), "{held}");
    }

    let cat = wait_for_image(&app, cat["id"].as_str().unwrap(), |i| i["inPool"] == true).await;
    assert_eq!(cat["heldReason"], Value::Null);
    let coffee = wait_for_image(&app, coffee["id"].as_str().unwrap(), |i| {
        i["heldReason"]
            .as_str()
            .is_some_and(|r| !r.starts_with("AWAITING_SCAN"))
    })
    .await;
    assert_eq!(coffee["inPool"], false);
    assert!(
        coffee["heldReason"].as_str().unwrap().starts_with("NOT_A_CAT"),
        "{coffee}"
    );

    // Only the confirmed cat is ever drawn; the held image is kept, counted, weightless.
    let picks = random_cat_ids(&app).await;
    assert_eq!(picks.len(), 50);
    assert!(picks.iter().all(|id| id == cat["id"].as_str().unwrap()), "{picks:?}");
    let labels = app.labels().await;
    let cats = labels.as_array().unwrap().iter().find(|l| l["label"] == "cat").unwrap();
    assert_eq!(
        (cats["imageCount"].as_u64(), cats["totalWeight"].as_f64()),
        (Some(2), Some(0.5)),
        "{labels}"
    );
    app.assert_chunk_invariant().await;

    // Bytes whose scan is already final are settled at upload: the golden retriever was
    // scanned as a dog, so under `cat` it is held at once.
    let scan = request_scan_of(&app, dog["id"].as_str().unwrap(), false, false).await;
    wait_for_final(&app, scan["id"].as_str().unwrap(), false).await;
    let dog_as_cat = upload(&app, "cat", "images/dog_kde_golden.png").await;
    assert_eq!(dog_as_cat["inPool"], false);
    assert!(
        dog_as_cat["heldReason"].as_str().unwrap().starts_with("NOT_A_CAT"),
        "{dog_as_cat}"
    );

    // A held image can be re-weighted and deleted like any other, and stays consistent.
    let (status, reweighted) = app.set_weight(coffee["id"].as_str().unwrap(), 0.9).await;
    assert_eq!((status, reweighted.get("errors")), (200, None), "{reweighted}");
    assert_eq!(reweighted["data"]["setWeight"]["weight"], 0.9, "{reweighted}");
    let held = image(&app, coffee["id"].as_str().unwrap()).await;
    assert_eq!(
        (held["weight"].clone(), held["inPool"].clone()),
        (json!(0.9), json!(false)),
        "{held}"
    );
    app.assert_chunk_invariant().await;
    assert!(app.delete_image(coffee["id"].as_str().unwrap()).await);
    app.assert_chunk_invariant().await;
}

on_both_backends!(cats_enter_the_pool_only_once_a_scan_confirms_a_cat);

#[tokio::test]
async fn on_aws_the_stream_handler_lets_the_cat_in() {
    let app = TestApp::builder(Backend::Aws)
        .settings(checked())
        .stream_handler_scans()
        .start()
        .await;
    let (resources, _) = crate::scan_stream::resources(&app);
    let mut stream = StreamReader::open(&app, &resources.scan_table).await;
    let cat = upload(&app, "cat", "images/cat_kde_tabby.png").await;
    // Nothing scans in the API process: held, and not drawn.
    assert_eq!(cat["inPool"], false);
    assert!(
        cat["heldReason"].as_str().unwrap().starts_with("AWAITING_SCAN"),
        "{cat}"
    );
    assert!(random_cat_ids(&app).await.is_empty(), "a held image is never drawn");

    let event = stream.next_event().await;
    let scanner = stream_scanner_with(&app, offline_detector(), &checked()).await;
    let response = pawql::scan_stream::invoke(&scanner, event).await.unwrap();
    assert_eq!(response["batchItemFailures"], json!([]));
    let admitted = image(&app, cat["id"].as_str().unwrap()).await;
    assert_eq!(
        (admitted["inPool"].as_bool(), &admitted["heldReason"]),
        (Some(true), &Value::Null)
    );
    assert_eq!(random_cat_ids(&app).await.len(), 50);
    app.assert_chunk_invariant().await;
}
