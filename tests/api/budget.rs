//! The AWS request budget, counted by an SDK interceptor on the real clients: every request
//! that got a response from moto is recorded as `service.Operation`, so an extra read shows up
//! here. (Counted on the response side because presigning runs the request pipeline up to
//! signing without sending anything; a presigned URL is not a request.) What `Image.scan`
//! costs over a list, on every door, is in `doors.rs`.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use pawql::adapters::aws::AwsClients;
use pawql::app::{BackendSpec, Wiring};
use serde_json::json;

use crate::support::helpers::{Backend, TestApp};
use crate::support::moto::MotoServer;

mod doors;

/// Records each request when its response arrives, and the bodies requests were sent with.
#[derive(Debug, Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>);

impl RequestLog {
    fn take(&self) -> Vec<String> {
        self.1.lock().unwrap().clear();
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The bodies sent since the last `take` (DynamoDB's and SSM's are JSON).
    fn bodies(&self) -> Vec<String> {
        self.1.lock().unwrap().clone()
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        self.1.lock().unwrap().push(String::from_utf8_lossy(body).into_owned());
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let metadata = cfg.load::<Metadata>().expect("every SDK operation has metadata");
        let service = metadata.service().to_lowercase();
        self.0.lock().unwrap().push(format!("{service}.{}", metadata.name()));
        Ok(())
    }
}

async fn logged_clients(log: &RequestLog) -> AwsClients {
    let sdk = MotoServer::shared().await.sdk_config().await;
    AwsClients {
        s3: aws_sdk_s3::Client::from_conf(pawql::adapters::aws::s3_config(&sdk).interceptor(log.clone()).build()),
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(log.clone())
                .build(),
        ),
        ssm: aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&sdk)
                .interceptor(log.clone())
                .build(),
        ),
        rekognition: aws_sdk_rekognition::Client::from_conf(
            aws_sdk_rekognition::config::Builder::from(&sdk)
                .interceptor(log.clone())
                .build(),
        ),
    }
}

/// The logged clients with the IAM of `function`'s role.
fn acting_as(clients: &AwsClients, function: &[crate::iam::Function], stage: &str) -> AwsClients {
    crate::iam::enforcing(clients, function, stage)
}

/// The scan handler of `stage` as the scan function builds it, its calls made through `clients`.
use crate::scan_stream::scan_handler;

/// A server as the Lambda API function runs (scans left to the stream handler), its AWS calls
/// logged in `log` (with the API's role, as the harness gives it); and the logged clients
/// with the scan handler's role, for the scan handler beside it.
async fn lambda_api(log: &RequestLog) -> (TestApp, AwsClients) {
    let clients = logged_clients(log).await;
    let app = TestApp::builder(Backend::Aws)
        .clients(clients.clone())
        .stream_handler_scans()
        .start()
        .await;
    let stage = app.stage().to_owned();
    (app, acting_as(&clients, &[crate::iam::Function::Scan], &stage))
}

#[tokio::test]
async fn each_operation_stays_within_its_aws_request_budget() {
    let log = RequestLog::default();
    // Many labels, so `labels` proves its one request for more than a couple.
    let names: Vec<String> = (0..40)
        .map(|i| format!("pet{i}"))
        .chain(["cat".into(), "dog".into()])
        .collect();
    let settings = resolvers::CatalogSettings {
        labels: resolvers::domain::label::LabelSet::new(&names).unwrap(),
        ..Default::default()
    };
    let app = TestApp::builder(Backend::Aws)
        .clients(logged_clients(&log).await)
        .settings(settings)
        .start()
        .await;
    // Start-up: the stage's parameters, once; and the scan worker's look for scans left
    // unfinished, one Query per shard of the sparse index (a background task, so wait for
    // it before counting anything else).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.0.lock().unwrap().iter().filter(|r| *r == "dynamodb.Query").count() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery scan: {:?}",
            log.0.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        log.take(),
        [
            "ssm.GetParametersByPath",
            "dynamodb.Query",
            "dynamodb.Query",
            "dynamodb.Query",
            "dynamodb.Query"
        ]
    );

    let first = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    assert_eq!(
        log.take(),
        [
            "dynamodb.GetItem",
            "s3.PutObject",
            "s3.PutObject",
            "dynamodb.GetItem",
            "dynamodb.BatchGetItem",
            "dynamodb.TransactWriteItems"
        ],
        "is it new, the object and its one variant (451×300: only a thumbnail is smaller; nothing \
         read from S3), its shard's chunk info (none yet, so the label's item under its bare name \
         and its other shards' items are looked at in one request, for a label still waiting for \
         `pawql migrate`: once per shard), then row, slot and chunk info in one transaction; every \
         service counted"
    );
    // The next upload to a shard that exists: no look for the old layout.
    let shards = resolvers::domain::chunks::WriteShards::default();
    let cat = resolvers::domain::label::LabelSet::default_pets().parse("cat").unwrap();
    let first_shard = shards.shard_of(
        &resolvers::domain::image::ImageId::parse(first["id"].as_str().unwrap(), &app.catalog.settings().labels)
            .unwrap(),
    );
    let same_shard = (0..200u32)
        .map(crate::random::png_number)
        .find(|png| {
            let id = resolvers::domain::image::ImageId::new(cat.clone(), resolvers::domain::image::Sha256Hex::of(png));
            shards.shard_of(&id) == first_shard
        })
        .unwrap();
    let (status, body) = app
        .upload_raw("cat", Some(0.5), "n.png", "image/png", same_shard.to_vec())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        log.take(),
        [
            "dynamodb.GetItem",
            "s3.PutObject",
            "dynamodb.GetItem",
            "dynamodb.TransactWriteItems"
        ],
        "an upload to a shard in use: is it new, the object, the shard's chunk info, one transaction"
    );
    app.delete_image(body["data"]["upload"]["id"].as_str().unwrap()).await;
    log.take();

    app.random_image("cat", "url").await;
    assert_eq!(
        log.take(),
        ["dynamodb.BatchGetItem", "dynamodb.BatchGetItem"],
        "randomImage {{ url }} is the label's shard items, then the drawn slots (copies of the \
         rows), and no S3 request (the URL is signed locally)"
    );

    // A phone's pick: a sized URL and the placeholder come from the slot's copy of the row.
    let picked = app
        .random_image("cat", "url(size: SMALL) thumb: url(size: THUMB) placeholder")
        .await;
    assert!(
        picked["placeholder"].is_string() && picked["thumb"].is_string(),
        "{picked}"
    );
    assert_eq!(
        log.take(),
        ["dynamodb.BatchGetItem", "dynamodb.BatchGetItem"],
        "randomImage {{ url(size:) placeholder }}: the same two requests, no S3"
    );

    app.random_image("cat", "base64").await;
    assert_eq!(
        log.take(),
        ["dynamodb.BatchGetItem", "dynamodb.BatchGetItem", "s3.GetObject"],
        "base64 adds exactly the one S3 read"
    );

    // Many draws still cost one read of slots.
    for count in [10, 50] {
        app.data(
            &format!("{{ randomImages(label: \"cat\", count: {count}) {{ url }} }}"),
            json!({}),
        )
        .await;
        assert_eq!(
            log.take(),
            ["dynamodb.BatchGetItem", "dynamodb.BatchGetItem"],
            "randomImages({count}): every draw's slots in the one BatchGetItem"
        );
    }

    let labels = app.data("{ labels { label imageCount } }", json!({})).await;
    assert_eq!(labels["labels"].as_array().unwrap().len(), 42, "{labels}");
    assert_eq!(
        log.take(),
        ["dynamodb.BatchGetItem", "dynamodb.BatchGetItem"],
        "all 42 configured labels' shard items (3 each) and their keys of the layout before write \
         shards: 168 keys, two requests of at most 100 (it was a GetItem per label)"
    );

    // Image.scan over a list, on every door: `doors.rs`.
}

/// The row "a scan of WebP, or over Rekognition's limits, or a scan-only upload": the bytes
/// are fetched once and sent inline.
#[tokio::test]
async fn a_scan_that_sends_bytes_inline_fetches_them_once() {
    let log = RequestLog::default();
    let (app, clients) = lambda_api(&log).await;
    let scanner = scan_handler(&clients, app.stage()).await;
    let webp = app.upload("dog", "images/dog_farm_german_shepherd.webp", 0.5).await;
    let scan = crate::scan::request_scan_of(&app, webp["id"].as_str().unwrap(), false, false).await;
    log.take();
    scanner
        .run(&crate::scan::scan_id(scan["id"].as_str().unwrap()), true)
        .await
        .unwrap();
    assert_eq!(
        log.take(),
        [
            "dynamodb.GetItem",
            "dynamodb.PutItem",
            "dynamodb.GetItem",
            "s3.GetObject",
            "rekognition.DetectLabels",
            "dynamodb.PutItem"
        ],
        "WebP: the scan, its claim, the image row, the bytes (to transcode), DetectLabels inline, the verdict"
    );

    let scan_only =
        crate::scan::scan_only_upload(&app, crate::support::helpers::fixture("images/cat_chelsea.png")).await;
    let id = scan_only["data"]["requestScan"]["id"]
        .as_str()
        .expect("scan-only upload")
        .to_owned();
    log.take();
    scanner.run(&crate::scan::scan_id(&id), true).await.unwrap();
    assert_eq!(
        log.take(),
        [
            "dynamodb.GetItem",
            "dynamodb.PutItem",
            "s3.GetObject",
            "rekognition.DetectLabels",
            "dynamodb.PutItem"
        ],
        "a scan-only upload: the scan, its claim, the bytes (no image row), DetectLabels inline, the verdict"
    );
}

#[tokio::test]
async fn a_scan_costs_its_budget_on_the_lambda_path() {
    let log = RequestLog::default();
    let (app, clients) = lambda_api(&log).await;
    assert_eq!(log.take(), ["ssm.GetParametersByPath"], "the API function's cold start");
    let uploaded = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    log.take();

    // requestScan on Lambda only records the pending scan (the stream does the rest).
    let scan = crate::scan::request_scan_of(&app, uploaded["id"].as_str().unwrap(), true, false).await;
    let id = scan["id"].as_str().unwrap().to_owned();
    assert_eq!(
        log.take(),
        ["dynamodb.GetItem", "dynamodb.PutItem"],
        "the image row, then the pending scan put only if no scan of these bytes exists (no read first)"
    );

    // The scan handler, as the stream invokes it: Rekognition reads the object from S3 itself.
    let scanner = scan_handler(&clients, app.stage()).await;
    assert_eq!(
        log.take(),
        ["ssm.GetParametersByPath"],
        "the scan function's cold start"
    );
    scanner.run(&crate::scan::scan_id(&id), true).await.unwrap();
    assert_eq!(
        log.take(),
        [
            "dynamodb.GetItem",
            "dynamodb.PutItem",
            "dynamodb.GetItem",
            "rekognition.DetectLabels",
            "dynamodb.PutItem"
        ],
        "the scan, its conditional claim, the image row (its facts say Rekognition can take the S3 \
         object as it is, so the scan does not fetch the bytes), DetectLabels, the verdict"
    );

    // Reading the verdict (what scanResult, Image.scan and a subscription's polls do): one
    // GetItem that asks for the record only, not the debug data kept with this scan.
    let q = "query($id: ID!) { scanResult(id: $id) { status isCat } }";
    assert_eq!(
        app.data(q, json!({ "id": id })).await["scanResult"]["status"],
        "SUCCEEDED"
    );
    let bodies = log.bodies();
    assert_eq!(log.take(), ["dynamodb.GetItem"]);
    let read: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(read["ProjectionExpression"], "#record", "{read}");
    assert_eq!(read["ConsistentRead"], true);

    // A batch's results (`scanResults`, what `pawql results` asks 100 at a time, and what each
    // poll of `scansUpdated` reads): one BatchGetItem, record only.
    let unknown = "e".repeat(64);
    let q = "query($ids: [ID!]!) { scanResults(ids: $ids) { status } }";
    let data = app.data(q, json!({ "ids": [id, unknown, id] })).await;
    assert_eq!(data["scanResults"][0]["status"], "SUCCEEDED");
    assert_eq!(data["scanResults"][1], serde_json::Value::Null);
    let bodies = log.bodies();
    assert_eq!(log.take(), ["dynamodb.BatchGetItem"]);
    let read: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let asked = &read["RequestItems"].as_object().unwrap().values().next().unwrap();
    assert_eq!(
        asked["Keys"].as_array().unwrap().len(),
        2,
        "each scan asked once: {read}"
    );
    assert_eq!(asked["ProjectionExpression"], "#a0", "{read}");
}

/// The rows "the sweep" and "`GET /random` of an image too large for a Lambda response".
#[tokio::test]
async fn the_sweep_and_a_redirected_random_cost_their_budget() {
    let log = RequestLog::default();
    let clients = logged_clients(&log).await;
    let plain = MotoServer::shared().await.clients().await;
    let stage = crate::support::moto::unique_stage();
    pawql::adapters::aws::provision(&plain, &stage).await.unwrap();
    crate::lambda::set_keys(&plain, &stage, "apiKeys", "budget-key-0123456789").await;

    // The sweep over a stage with nothing stale: one Query per shard of the sparse index.
    let scanner = scan_handler(&acting_as(&clients, &[crate::iam::Function::Scan], &stage), &stage).await;
    log.take();
    let deadline = tokio::time::Instant::now() + pawql::scan_stream::FUNCTION_TIMEOUT;
    pawql::scan_stream::sweep(&scanner, chrono::Duration::minutes(15), deadline)
        .await
        .unwrap();
    assert_eq!(log.take(), ["dynamodb.Query"; 4]);

    // A ~5 MB image, filed through the presigned path, then drawn by petAPI's /random on the
    // Lambda: the pick, and a redirect instead of the bytes (no GetObject).
    let router = Wiring::new(
        BackendSpec::aws(&acting_as(&clients, &[crate::iam::Function::Api], &stage), &stage),
        resolvers::CatalogSettings::default(),
    )
    .lambda_api(80.0)
    .await
    .unwrap()
    .door;
    let big = crate::lambda::noise_png(1400, 1200);
    let key = Some("budget-key-0123456789");
    let ask = format!(
        "mutation {{ requestUpload(label: \"cat\", byteSize: {}) {{ ticket uploadUrl }} }}",
        big.len()
    );
    let (_, grant) = crate::lambda::invoke_graphql(&router, key, &ask).await;
    let grant = &grant["data"]["requestUpload"];
    crate::support::helpers::http_client()
        .put(grant["uploadUrl"].as_str().unwrap())
        .body(big)
        .send()
        .await
        .unwrap();
    let complete = format!(
        "mutation {{ completeUpload(ticket: \"{}\") {{ id }} }}",
        grant["ticket"].as_str().unwrap()
    );
    let (_, filed) = crate::lambda::invoke_graphql(&router, key, &complete).await;
    assert!(filed["data"]["completeUpload"]["id"].is_string(), "{filed}");
    log.take();
    let response = pawql::lambda::invoke(router, crate::lambda::get_event("/random", "label=cat"))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 302);
    assert_eq!(log.take(), ["dynamodb.BatchGetItem", "dynamodb.BatchGetItem"]);
}

/// The opt-in bounded staleness (`PAWQL_CHUNK_INFO_MAX_AGE_MS`): a pick within the age reads
/// only its slots; a write through the same server makes the next pick read the chunk info
/// again; and a deleted image is never handed out, however old the chunk info.
#[tokio::test]
async fn recent_chunk_info_saves_the_shard_reads_and_never_serves_a_deleted_image() {
    let log = RequestLog::default();
    let settings = resolvers::CatalogSettings {
        chunk_info_max_age: std::time::Duration::from_secs(600),
        ..Default::default()
    };
    let app = TestApp::builder(Backend::Aws)
        .clients(logged_clients(&log).await)
        .settings(settings)
        .start()
        .await;
    let kept = app.upload("dog", "images/dog_kde_golden.png", 0.5).await;
    let gone = app.upload("dog", "images/dog_farm_german_shepherd.webp", 0.5).await;
    app.random_image("dog", "id").await;
    log.take();
    app.random_image("dog", "id").await;
    assert_eq!(
        log.take(),
        ["dynamodb.BatchGetItem"],
        "slots only: the chunk info is recent"
    );

    // Deleted behind this server's back (another Lambda instance): the recent chunk info
    // still counts it, the slots do not.
    let gone_id = resolvers::domain::image::ImageId::parse(
        gone["id"].as_str().unwrap(),
        &resolvers::domain::label::LabelSet::default_pets(),
    )
    .unwrap();
    app.tables.remove_image(&gone_id).await.unwrap();
    let drawn = app
        .data("{ randomImages(label: \"dog\", count: 50) { id } }", json!({}))
        .await;
    let drawn = drawn["randomImages"].as_array().unwrap();
    assert_eq!(drawn.len(), 50);
    assert!(drawn.iter().all(|image| image["id"] == kept["id"]), "{drawn:?}");

    // A write through this server: the next pick reads the chunk info again.
    app.set_weight(kept["id"].as_str().unwrap(), 0.25).await;
    log.take();
    app.random_image("dog", "id").await;
    assert_eq!(log.take(), ["dynamodb.BatchGetItem", "dynamodb.BatchGetItem"]);
}

/// `pawql results` over a batch of 250 files (an ice-cat-wrangler log: the hash is the scan
/// id): 3 requests to the server and one `BatchGetItem` each, not 250 of either.
#[tokio::test]
async fn pawql_results_reads_a_batch_a_hundred_scans_a_request() {
    let log = RequestLog::default();
    // As the API function runs: no in-process worker looking for scans at start-up.
    let (app, _) = lambda_api(&log).await;
    let entries: Vec<serde_json::Value> = (0..250u32)
        .map(|i| {
            json!({
                "file_image_hash": format!("{i:064x}"),
                "batch_id": "b1",
                "original_file_name": format!("f{i}.jpg"),
                "upload_time": "2026-11-30-02",
                "epoch_timestamp": 1_795_000_000,
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch.json");
    std::fs::write(&batch, serde_json::to_vec(&entries).unwrap()).unwrap();
    log.take();
    let endpoint = format!("{}/graphql", app.address);
    let key = app.key.clone().unwrap_or_default();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pawql"))
            .args([
                "results",
                batch.to_str().unwrap(),
                "--json",
                "--endpoint",
                &endpoint,
                "--api-key",
                &key,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results.as_array().unwrap().len(), 250);
    assert!(
        results.as_array().unwrap().iter().all(|r| r["status"] == "UNKNOWN"),
        "none of them exist"
    );
    assert_eq!(log.take(), ["dynamodb.BatchGetItem"; 3], "100 + 100 + 50 scans");
}

/// SSM answers `GetParametersByPath` at most 10 parameters a page: a stage with more (keys,
/// settings, resources) is read whole, a page at a time (docs/aws-rules.md, P1).
#[tokio::test]
async fn a_stage_with_more_parameters_than_one_page_is_read_whole() {
    let log = RequestLog::default();
    let clients = logged_clients(&log).await;
    let plain = MotoServer::shared().await.clients().await;
    let stage = crate::support::moto::unique_stage();
    pawql::adapters::aws::provision(&plain, &stage).await.unwrap();
    let path = pawql::adapters::aws::resources::parameter_path(&stage);
    for n in 0..14 {
        plain
            .ssm
            .put_parameter()
            .name(format!("{path}extra/p{n:02}"))
            .value(format!("v{n}"))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
    }
    let read =
        pawql::adapters::aws::load_parameters(&acting_as(&clients, &[crate::iam::Function::Api], &stage).ssm, &stage)
            .await
            .unwrap();
    for n in 0..14 {
        assert_eq!(read[&format!("extra/p{n:02}")], format!("v{n}"));
    }
    assert!(read.len() > 14 && read.contains_key("bucket"), "{:?}", read.keys());
    let pages = log.take();
    assert!(
        pages.len() >= read.len().div_ceil(10) && pages.iter().all(|p| p == "ssm.GetParametersByPath"),
        "{} parameters in {pages:?}",
        read.len()
    );
}
