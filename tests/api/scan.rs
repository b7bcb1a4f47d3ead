//! Cat scans over HTTP on the embedded backend with the offline detector: requested, worked
//! on in the background, deduplicated by content, debug data behind the admin key, and
//! finished after a crash. On both backends (scans in redb, or in DynamoDB's scanTable on moto),
//! with the offline detector and the in-process worker.

use std::time::{Duration, Instant};

use chrono::Utc;
use resolvers::domain::image::{ImageId, Sha256Hex};
use resolvers::domain::label::LabelSet;
use resolvers::domain::scan::{ScanRecord, ScanSource, ScanStatus};
use serde_json::{json, Value};

use crate::support::helpers::{error_codes, fixture, spawn_app, Backend, TestApp, ADMIN_KEY};

pub(crate) const SCAN_FIELDS: &str =
    "id status isCat catConfidence labels { name confidence } detector requestedAt finishedAt error attempts";

pub(crate) async fn request_scan_of(app: &TestApp, image_id: &str, debug: bool, force: bool) -> Value {
    let q = format!(
        "mutation($id: ID!, $debug: Boolean, $force: Boolean) {{ requestScan(imageId: $id, debug: $debug, force: $force) {{ {SCAN_FIELDS} }} }}"
    );
    app.data(&q, json!({ "id": image_id, "debug": debug, "force": force }))
        .await["requestScan"]
        .clone()
}

/// Polls `scanResult` until the scan is final.
pub(crate) async fn wait_for_final(app: &TestApp, id: &str, with_debug: bool) -> Value {
    let fields = if with_debug {
        format!("{SCAN_FIELDS} debug")
    } else {
        SCAN_FIELDS.to_owned()
    };
    let q = format!("query($id: ID!) {{ scanResult(id: $id) {{ {fields} }} }}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = app.graphql_as(Some(ADMIN_KEY), &q, json!({ "id": id })).await;
        let scan = body["data"]["scanResult"].clone();
        if scan["status"] == "SUCCEEDED" || scan["status"] == "FAILED" {
            return scan;
        }
        assert!(Instant::now() < deadline, "scan {id} not final: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_scan_returns_pending_at_once_and_succeeds_in_the_background(backend: Backend) {
    let app = spawn_app(backend).await;
    let cat = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let dog = app.upload("dog", "images/dog_kde_golden.png", 0.5).await;

    let requested = request_scan_of(&app, cat["id"].as_str().unwrap(), false, false).await;
    assert_eq!(
        requested["id"], cat["sha256"],
        "a scan is named by the content it scans"
    );
    assert!(
        requested["status"] == "PENDING" || requested["status"] == "RUNNING" || requested["status"] == "SUCCEEDED",
        "{requested}"
    );
    let done = wait_for_final(&app, requested["id"].as_str().unwrap(), false).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["isCat"], true);
    assert!(done["catConfidence"].as_f64().unwrap() > 0.4);
    assert_eq!(done["detector"], "offline:efficientnet-lite0");
    assert!(done["finishedAt"].is_string());
    assert!(!done["labels"].as_array().unwrap().is_empty());

    let scanned = request_scan_of(&app, dog["id"].as_str().unwrap(), false, false).await;
    let done = wait_for_final(&app, scanned["id"].as_str().unwrap(), false).await;
    assert_eq!(done["isCat"], false, "{done}");

    // Image.scan shows the scan of the image's bytes.
    let image = app
        .data(
            "query($id: ID!) { image(id: $id) { scan { status isCat } } }",
            json!({ "id": cat["id"] }),
        )
        .await;
    assert_eq!(image["image"]["scan"], json!({ "status": "SUCCEEDED", "isCat": true }));

    // randomImages reads the scans of all its images in one batch (see the budget test):
    // each image still gets its own scan, and one never scanned gets null.
    let unscanned = app.upload("dog", "images/dog_darknet_bicycle.jpg", 0.5).await;
    let drawn = app
        .data(
            "{ randomImages(label: \"dog\", count: 40) { id scan { id isCat } } }",
            json!({}),
        )
        .await;
    let mut seen = std::collections::BTreeSet::new();
    for image in drawn["randomImages"].as_array().unwrap() {
        if image["id"] == dog["id"] {
            assert_eq!(image["scan"], json!({ "id": dog["sha256"], "isCat": false }), "{drawn}");
        } else {
            assert_eq!(image["id"], unscanned["id"], "{drawn}");
            assert_eq!(image["scan"], Value::Null, "{drawn}");
        }
        seen.insert(image["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 2, "40 draws of two equal weights meet both: {drawn}");
}

on_both_backends!(a_scan_returns_pending_at_once_and_succeeds_in_the_background);

async fn the_same_bytes_are_scanned_once_unless_forced(backend: Backend) {
    let app = spawn_app(backend).await;
    let cat = app.upload("cat", "images/cat_kde_tabby_q85.jpg", 0.5).await;
    let id = cat["id"].as_str().unwrap();
    // Concurrent requests for one image: one scan.
    let requests = (0..5).map(|_| request_scan_of(&app, id, false, false));
    let scans = futures_util::future::join_all(requests).await;
    // The id is the bytes' hash, so equal ids prove nothing; each request stamps its own
    // `requestedAt` (nanoseconds), so requests that overwrote each other would answer
    // different ones, and the scan kept would be only the last writer's.
    let stamps: std::collections::BTreeSet<String> = scans
        .iter()
        .map(|s| s["requestedAt"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stamps.len(), 1, "five requests, one scan record: {scans:?}");
    assert!(scans.iter().all(|s| s["id"] == scans[0]["id"]));
    let first = wait_for_final(&app, scans[0]["id"].as_str().unwrap(), false).await;
    assert_eq!(first["attempts"], 1, "one scan ran: {first}");
    assert_eq!(
        first["requestedAt"], scans[0]["requestedAt"],
        "the record kept is the one every request was told of"
    );

    // The same bytes uploaded for scanning only, or under another label: the same scan.
    let again = scan_only_upload(&app, fixture("images/cat_kde_tabby_q85.jpg")).await;
    assert_eq!(
        again["data"]["requestScan"]["finishedAt"], first["finishedAt"],
        "{again}"
    );
    let as_dog = app.upload("dog", "images/cat_kde_tabby_q85.jpg", 0.5).await;
    let scan = request_scan_of(&app, as_dog["id"].as_str().unwrap(), false, false).await;
    assert_eq!(scan["finishedAt"], first["finishedAt"]);

    // force: a new scan of the same bytes.
    let forced = request_scan_of(&app, id, false, true).await;
    assert_ne!(forced["status"], "SUCCEEDED", "a forced scan starts over: {forced}");
    let done = wait_for_final(&app, id.rsplit('-').next().unwrap(), false).await;
    assert_ne!(done["finishedAt"], first["finishedAt"]);
    assert_eq!(done["isCat"], true);
}

on_both_backends!(the_same_bytes_are_scanned_once_unless_forced);

pub(crate) async fn scan_only_upload(app: &TestApp, bytes: Vec<u8>) -> Value {
    let operations = json!({
        "query": format!("mutation($image: Upload!) {{ requestScan(image: $image) {{ {SCAN_FIELDS} }} }}"),
        "variables": { "image": null }
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.image"] }).to_string())
        .part("0", reqwest::multipart::Part::bytes(bytes).file_name("x"));
    app.post_form("/graphql", form).await.1
}

async fn scan_only_uploads_are_validated_like_uploads_and_scanned(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.residue().await;
    for (file, code) in [
        ("bad-inputs/truncated.jpg", "INVALID_IMAGE"),
        ("bad-inputs/cat.gif", "UNSUPPORTED_MEDIA_TYPE"),
        ("bad-inputs/bomb_50000x50000_1bit.png", "IMAGE_TOO_LARGE"),
    ] {
        let body = scan_only_upload(&app, fixture(file)).await;
        assert_eq!(error_codes(&body), [code], "{file}: {body}");
    }
    assert_eq!(app.residue().await, before, "refused scans leave nothing behind");

    let body = scan_only_upload(&app, fixture("bad-inputs/exif_orientation_6.jpg")).await;
    let id = body["data"]["requestScan"]["id"].as_str().unwrap().to_owned();
    let done = wait_for_final(&app, &id, false).await;
    assert_eq!(done["isCat"], true, "{done}");
    assert_eq!(
        app.labels().await[0]["imageCount"],
        0,
        "a scan-only upload is not in the catalogue"
    );

    let (_, body) = app.graphql("mutation { requestScan { id } }", json!({})).await;
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "neither imageId nor image");
    let (_, body) = app
        .graphql(
            "mutation($id: ID!) { requestScan(imageId: $id) { id } }",
            json!({ "id": format!("cat-{}", "0".repeat(64)) }),
        )
        .await;
    assert_eq!(error_codes(&body), ["NOT_FOUND"]);
    let (_, body) = app.graphql("{ scanResult(id: \"../x\") { id } }", json!({})).await;
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"]);
    let unknown = app
        .data(
            &format!("{{ scanResult(id: \"{}\") {{ id }} }}", "0".repeat(64)),
            json!({}),
        )
        .await;
    assert_eq!(unknown["scanResult"], Value::Null);
}

on_both_backends!(scan_only_uploads_are_validated_like_uploads_and_scanned);

async fn debug_data_needs_the_admin_key_and_holds_only_its_own_scan(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for file in [
        "images/cat_chelsea.png",
        "images/none_coffee.png",
        "images/dog_darknet_bicycle.jpg",
        "images/none_rocket.jpg",
    ] {
        let label = if file.contains("cat") { "cat" } else { "dog" };
        ids.push(app.upload(label, file, 0.5).await["id"].as_str().unwrap().to_owned());
    }
    // Requested at once, so the worker runs them concurrently.
    let requests = ids.iter().map(|id| request_scan_of(&app, id, true, false));
    let scans = futures_util::future::join_all(requests).await;
    for scan in &scans {
        let id = scan["id"].as_str().unwrap();
        let done = wait_for_final(&app, id, true).await;
        let debug = &done["debug"];
        let log = debug["log"].as_array().unwrap();
        assert!(!log.is_empty(), "{done}");
        assert!(debug["timings"].as_array().unwrap().iter().any(|t| t[0] == "detect"));
        assert_eq!(debug["raw"]["probs"].as_array().unwrap().len(), 1000);
        let text = log.iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("\n");
        assert!(text.contains("claimed"), "{text}");
        assert!(
            log.iter()
                .all(|line| line.as_str().unwrap().contains(&format!("scan={id}"))),
            "every line is this scan's own: {text}"
        );
        for other in scans.iter().filter(|s| s["id"] != scan["id"]) {
            let other_id = other["id"].as_str().unwrap();
            assert!(!text.contains(other_id), "scan {id}'s log mentions {other_id}");
        }
    }

    // Without the key (or with a wrong one): FORBIDDEN, and no debug data.
    let q = format!(
        "{{ scanResult(id: \"{}\") {{ status debug }} }}",
        scans[0]["id"].as_str().unwrap()
    );
    let body: Value = crate::support::helpers::http_client()
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": q }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_codes(&body), ["FORBIDDEN"], "{body}");
    assert!(body["data"]["scanResult"].is_null() || body["data"]["scanResult"]["debug"].is_null());
    let (_, wrong) = app.graphql_as(Some("test-admin-key-0123456780"), &q, json!({})).await;
    assert_eq!(
        error_codes(&wrong),
        ["UNAUTHENTICATED"],
        "a key that matches none is refused outright"
    );
}

on_both_backends!(debug_data_needs_the_admin_key_and_holds_only_its_own_scan);

#[tokio::test]
async fn scans_left_pending_or_running_by_a_crash_finish_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (running_id, pending_id, doomed_id);
    {
        // What a crash leaves: the server stopped with one scan claimed and one not yet.
        let app = TestApp::builder(Backend::Embedded).data_dir(dir.path()).start().await;
        let running = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
        let pending = app.upload("dog", "images/dog_farm_german_shepherd.webp", 0.5).await;
        // Claimed three times already: every worker that took it died.
        let doomed = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
        running_id = running["sha256"].as_str().unwrap().to_owned();
        pending_id = pending["sha256"].as_str().unwrap().to_owned();
        doomed_id = doomed["sha256"].as_str().unwrap().to_owned();
        app.stop().await;
        let (_, tables) =
            pawql::adapters::embedded::open(dir.path(), "http://x", &resolvers::CatalogSettings::default()).unwrap();
        let scans = pawql::adapters::embedded::RedbScanStore::new(tables.database()).unwrap();
        use resolvers::ports::ScanStore;
        for (sha, image_id, status, attempts) in [
            (&running_id, running["id"].as_str().unwrap(), ScanStatus::Running, 1),
            (&pending_id, pending["id"].as_str().unwrap(), ScanStatus::Pending, 0),
            (&doomed_id, doomed["id"].as_str().unwrap(), ScanStatus::Running, 3),
        ] {
            let mut record = ScanRecord::pending(
                Sha256Hex::parse(sha).unwrap(),
                ScanSource::Image {
                    id: ImageId::parse(image_id, &LabelSet::default_pets()).unwrap(),
                },
                false,
                Utc::now(),
            );
            record.status = status;
            record.attempts = attempts;
            scans.request(record, false).await.unwrap();
        }
    }
    let app = TestApp::builder(Backend::Embedded).data_dir(dir.path()).start().await;
    let running = wait_for_final(&app, &running_id, false).await;
    assert_eq!(
        (running["status"].as_str(), running["isCat"].as_bool()),
        (Some("SUCCEEDED"), Some(true))
    );
    assert_eq!(running["attempts"], 2, "taken up again after the crash");
    let pending = wait_for_final(&app, &pending_id, false).await;
    assert_eq!(
        (pending["status"].as_str(), pending["isCat"].as_bool()),
        (Some("SUCCEEDED"), Some(false))
    );
    // A scan that has stopped every worker is not tried for ever.
    let doomed = wait_for_final(&app, &doomed_id, false).await;
    assert_eq!(doomed["status"], "FAILED", "{doomed}");
    assert!(doomed["error"].as_str().unwrap().starts_with("GAVE_UP"), "{doomed}");
    assert_eq!(doomed["attempts"], 4);
}

/// Subscribes to `scanUpdated` over WebSocket (graphql-transport-ws); returns every `next`
/// payload until the server completes the subscription.
pub(crate) async fn subscribe_scan_updated(app: &TestApp, id: &str) -> Vec<Value> {
    subscribe_scan_updated_at(&app.address, id).await
}

/// [`subscribe_scan_updated`] on the server at `address`.
pub(crate) async fn subscribe_scan_updated_at(address: &str, id: &str) -> Vec<Value> {
    let query = format!("subscription($id: ID!) {{ scanUpdated(id: $id) {{ {SCAN_FIELDS} }} }}");
    subscribe_at(address, &query, json!({ "id": id })).await
}

/// Runs subscription `query` over WebSocket (graphql-transport-ws) at `address` and returns
/// every `next` payload until the server completes it.
pub(crate) async fn subscribe_at(address: &str, query: &str, variables: Value) -> Vec<Value> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let url = format!("{}/graphql/ws", address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-transport-ws");
    let send = |v: Value| Message::text(v.to_string());
    socket.send(send(json!({ "type": "connection_init" }))).await.unwrap();
    let mut updates = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("subscription did not complete")
            .unwrap()
            .unwrap();
        let Message::Text(text) = message else { continue };
        let message: Value = serde_json::from_str(&text).unwrap();
        match message["type"].as_str().unwrap() {
            "connection_ack" => {
                let subscribe =
                    json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
                socket.send(send(subscribe)).await.unwrap();
            }
            "next" => updates.push(message["payload"].clone()),
            "complete" => return updates,
            other => panic!("unexpected {other}: {message}"),
        }
    }
}

async fn scan_updated_streams_each_status_change_until_final_over_websocket(backend: Backend) {
    let app = spawn_app(backend).await;
    let cat = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let scan = request_scan_of(&app, cat["id"].as_str().unwrap(), false, false).await;
    let updates = subscribe_scan_updated(&app, scan["id"].as_str().unwrap()).await;
    let statuses: Vec<&str> = updates
        .iter()
        .map(|u| u["data"]["scanUpdated"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.last(), Some(&"SUCCEEDED"), "{updates:?}");
    let mut deduped = statuses.clone();
    deduped.dedup();
    assert_eq!(deduped, statuses, "one update per status change");
    assert_eq!(updates.last().unwrap()["data"]["scanUpdated"]["isCat"], true);

    // A finished scan: one update, then complete.
    let again = subscribe_scan_updated(&app, scan["id"].as_str().unwrap()).await;
    assert_eq!(again.len(), 1);
    // No such scan: an error with its code, then complete.
    let missing = subscribe_scan_updated(&app, &"0".repeat(64)).await;
    assert_eq!(missing.len(), 1);
    assert_eq!(error_codes(&missing[0]), ["NOT_FOUND"], "{missing:?}");
}

on_both_backends!(scan_updated_streams_each_status_change_until_final_over_websocket);

/// A detector that fails its first `transient` calls with a retryable error, or every call
/// with a permanent one, before delegating to the real detector.
struct FailingDetector {
    inner: std::sync::Arc<dyn resolvers::ports::CatDetector>,
    transient: std::sync::atomic::AtomicU32,
    permanent: bool,
}

#[async_trait::async_trait]
impl resolvers::ports::CatDetector for FailingDetector {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn detect(
        &self,
        input: &resolvers::ports::ScanInput,
    ) -> Result<resolvers::domain::detection::Detection, resolvers::domain::detection::DetectError> {
        use resolvers::domain::detection::{DetectError, ScanFailure};
        if self.permanent {
            return Err(DetectError::new(
                ScanFailure::DetectorFailed,
                "the model rejected the input",
            ));
        }
        let left = self.transient.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.transient.store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(DetectError::new(ScanFailure::DetectorThrottled, "slow down"));
        }
        self.inner.detect(input).await
    }
}

/// Uploads the cat photo to a server whose detector fails as told, scans it, and returns the
/// final scan.
async fn scan_with_failing_detector(transient: u32, permanent: bool) -> Value {
    let app = TestApp::builder(Backend::Embedded)
        .wrap_detector(move |inner| {
            std::sync::Arc::new(FailingDetector {
                inner,
                transient: transient.into(),
                permanent,
            })
        })
        .start()
        .await;
    let cat = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let scan = request_scan_of(&app, cat["id"].as_str().unwrap(), false, false).await;
    wait_for_final(&app, scan["id"].as_str().unwrap(), false).await
}

#[tokio::test]
async fn transient_detector_failures_are_retried_and_permanent_ones_fail_with_a_reason() {
    let done = scan_with_failing_detector(2, false).await;
    assert_eq!(
        (done["status"].as_str(), done["isCat"].as_bool()),
        (Some("SUCCEEDED"), Some(true)),
        "{done}"
    );

    let done = scan_with_failing_detector(0, true).await;
    assert_eq!(done["status"], "FAILED");
    assert!(done["error"].as_str().unwrap().starts_with("DETECTOR_FAILED"), "{done}");
    assert_eq!(done["isCat"], Value::Null);

    let done = scan_with_failing_detector(100, false).await;
    assert_eq!(done["status"], "FAILED", "retries end; the scan does not stay pending");
    assert_eq!(
        done["error"], "DETECTOR_THROTTLED: the detector was busy, and retries ran out",
        "{done}"
    );
}

/// A scan id as the API shows it (64 hex digits), as the scan store takes it.
pub(crate) fn scan_id(text: &str) -> resolvers::domain::image::Sha256Hex {
    resolvers::domain::image::Sha256Hex::parse(text).unwrap_or_else(|| panic!("{text:?} is no scan id"))
}
