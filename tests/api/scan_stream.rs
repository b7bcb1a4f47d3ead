//! The AWS scan path as deployed: the API (as the Lambda API function runs it) only records
//! `PENDING`; the scan table's DynamoDB stream, read from moto with the official streams client
//! (DescribeStream / GetShardIterator / GetRecords), is turned into the event the event source
//! mapping would send and fed to the scan handler. Results are read back over HTTP, by polling
//! and through the subscription. Rekognition's request is proven on the wire against moto.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use pawql::adapters::aws::{self, RekognitionDetector, Resources};
use pawql::app::{BackendSpec, Wiring};
use resolvers::domain::image::{ImageKind, Sha256Hex};
use resolvers::ports::{CatDetector, ScanInput};
use resolvers::scanning::Scanner;
use resolvers::CatalogSettings;
use serde_json::{json, Map, Value};

use crate::scan::{request_scan_of, subscribe_scan_updated_at, wait_for_final, SCAN_FIELDS};
use crate::support::helpers::{fixture, Backend, Storage, TestApp};
use crate::support::moto::MotoServer;
use pawql::scan_stream::Swept;

/// A stream attribute value in the wire JSON shape Lambda events carry (`{"S": "…"}`).
fn attribute_json(value: &AttributeValue) -> Value {
    let b64 = |blob: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(blob.as_ref())
    };
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        AttributeValue::L(v) => json!({ "L": v.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": item_json(m) }),
        other => panic!("unknown attribute value {other:?}"),
    }
}

fn item_json(item: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect::<Map<_, _>>(),
    )
}

/// One stream record as the event source mapping delivers it to Lambda.
fn event_record(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb().unwrap();
    let created = change
        .approximate_creation_date_time()
        .map(|t| t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9);
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": created,
        "Keys": item_json(change.keys().unwrap()),
        "SequenceNumber": change.sequence_number(),
        "SizeBytes": change.size_bytes(),
        "StreamViewType": change.stream_view_type().map(|v| v.as_str()),
    });
    if let Some(new_image) = change.new_image() {
        dynamodb["NewImage"] = item_json(new_image);
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source(),
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// Reads a table's stream on moto.
pub(crate) struct StreamReader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// Where the next read of each shard starts.
    iterators: Vec<String>,
}

impl StreamReader {
    /// Opens the stream of `table` from its start (TRIM_HORIZON), every shard.
    pub(crate) async fn open(app: &TestApp, table: &str) -> StreamReader {
        let Storage::Aws { clients, .. } = &app.storage else {
            panic!("AWS backend only")
        };
        let sdk = MotoServer::shared().await.sdk_config().await;
        let client = aws_sdk_dynamodbstreams::Client::new(&sdk);
        let described = clients
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let stream_arn = described.table().unwrap().latest_stream_arn().unwrap().to_owned();
        let stream = client.describe_stream().stream_arn(&stream_arn).send().await.unwrap();
        let mut iterators = Vec::new();
        for shard in stream.stream_description().unwrap().shards() {
            let iterator = client
                .get_shard_iterator()
                .stream_arn(&stream_arn)
                .shard_id(shard.shard_id().unwrap())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .unwrap();
            iterators.push(iterator.shard_iterator().unwrap().to_owned());
        }
        assert!(!iterators.is_empty(), "the scan table has a stream with shards");
        StreamReader {
            client,
            stream_arn,
            iterators,
        }
    }

    /// The records added since the last read, as one Lambda event.
    pub(crate) async fn next_event(&mut self) -> Value {
        let mut records = Vec::new();
        for iterator in &mut self.iterators {
            let page = self
                .client
                .get_records()
                .shard_iterator(iterator.as_str())
                .send()
                .await
                .unwrap();
            records.extend(page.records().iter().map(|r| event_record(r, &self.stream_arn)));
            *iterator = page.next_shard_iterator().unwrap().to_owned();
        }
        json!({ "Records": records })
    }
}

/// The stage's resources and the clients of an AWS-backend app.
pub(crate) fn resources(app: &TestApp) -> (Resources, pawql::adapters::aws::AwsClients) {
    let Storage::Aws { clients, resources } = &app.storage else {
        panic!("AWS backend only")
    };
    (resources.clone(), clients.clone())
}

/// The offline detector, for a scan handler whose verdicts matter (moto's Rekognition gives
/// every image the same canned label).
pub(crate) fn offline_detector() -> Arc<dyn CatDetector> {
    Arc::new(pawql::detectors::offline::OfflineDetector::load(0.2).unwrap())
}

/// The handler's scanner over the app's stage, with `detector`.
pub(crate) async fn stream_scanner(app: &TestApp, detector: Arc<dyn CatDetector>) -> Scanner {
    stream_scanner_with(app, detector, &CatalogSettings::default()).await
}

/// [`stream_scanner`] for a catalogue with `settings` (the label check, say).
pub(crate) async fn stream_scanner_with(
    app: &TestApp,
    detector: Arc<dyn CatDetector>,
    settings: &CatalogSettings,
) -> Scanner {
    let (resources, clients) = self::resources(app);
    // As deployed: IAM enforced, with the scan function's role.
    let clients = crate::iam::enforcing(
        &clients,
        &[crate::iam::Function::Scan],
        &crate::iam::stage_of(&resources),
    );
    scan_handler_with(BackendSpec::AwsResources { clients, resources }, settings, detector).await
}

/// The scan handler as the scan function builds it, over `backend`, with `detector` in place
/// of Rekognition.
/// The scan handler of `stage` as `pawql lambda` builds it, its calls made through `clients`.
pub(crate) async fn scan_handler(clients: &pawql::adapters::aws::AwsClients, stage: &str) -> Scanner {
    Wiring::new(BackendSpec::aws(clients, stage), CatalogSettings::default())
        .scan_handler(80.0)
        .await
        .unwrap()
        .door
}

async fn scan_handler_with(
    backend: BackendSpec,
    settings: &CatalogSettings,
    detector: Arc<dyn CatDetector>,
) -> Scanner {
    Wiring::new(backend, settings.clone())
        .wrap(move |ports| {
            if let Some(parts) = ports.scanning.as_mut() {
                parts.detector = detector;
            }
        })
        .scan_handler(80.0)
        .await
        .unwrap()
        .door
}

/// Uploads `file` under `cat` and requests its scan: the scan's id, left PENDING (no worker).
async fn a_pending_scan(app: &TestApp, file: &str) -> String {
    let cat = app.upload("cat", file, 0.5).await;
    let scan = request_scan_of(app, cat["id"].as_str().unwrap(), false, false).await;
    scan["id"].as_str().unwrap().to_owned()
}

/// [`a_pending_scan`], and the stream's event for it with its record's sequence number (what
/// a batch-item failure names).
async fn a_pending_scan_on_the_stream(app: &TestApp, file: &str) -> (String, Value, Value) {
    let (resources, _) = resources(app);
    let mut stream = StreamReader::open(app, &resources.scan_table).await;
    let id = a_pending_scan(app, file).await;
    let event = stream.next_event().await;
    let sequence = event["Records"][0]["dynamodb"]["SequenceNumber"].clone();
    (id, event, sequence)
}

fn event_names(event: &Value) -> Vec<String> {
    event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                r["eventName"].as_str().unwrap(),
                r["dynamodb"]["NewImage"]["status"]["S"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

#[tokio::test]
async fn on_aws_the_stream_drives_the_scan_to_succeeded() {
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let (resources, _) = resources(&app);
    let mut stream = StreamReader::open(&app, &resources.scan_table).await;
    let cat = app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    let dog = app.upload("dog", "images/dog_kde_golden.png", 0.5).await;

    let requested = request_scan_of(&app, cat["id"].as_str().unwrap(), true, false).await;
    let dog_scan = request_scan_of(&app, dog["id"].as_str().unwrap(), false, false).await;
    assert_eq!(requested["status"], "PENDING");
    let id = requested["id"].as_str().unwrap().to_owned();
    // Nothing in the API process works on it: it stays PENDING until the handler runs.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let q = format!("query($id: ID!) {{ scanResult(id: $id) {{ {SCAN_FIELDS} }} }}");
    assert_eq!(
        app.data(&q, json!({ "id": id })).await["scanResult"]["status"],
        "PENDING"
    );

    // A subscriber waits while the stream is delivered.
    let subscription = tokio::spawn({
        let address = app.address.clone();
        let id = id.clone();
        async move { subscribe_scan_updated_at(&address, &id).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let event = stream.next_event().await;
    assert_eq!(event_names(&event), ["INSERT:PENDING", "INSERT:PENDING"], "{event}");
    let scanner = stream_scanner(&app, offline_detector()).await;
    let response = pawql::scan_stream::invoke(&scanner, event).await.unwrap();
    assert_eq!(response, json!({ "batchItemFailures": [] }));

    let done = wait_for_final(&app, &id, true).await;
    assert_eq!(
        (done["status"].as_str(), done["isCat"].as_bool()),
        (Some("SUCCEEDED"), Some(true)),
        "{done}"
    );
    assert_eq!(done["attempts"], 1);
    let log = done["debug"]["log"].as_array().unwrap();
    assert!(!log.is_empty(), "{done}");
    assert!(log.iter().all(|l| l.as_str().unwrap().contains(&id)), "{done}");
    let dog_done = wait_for_final(&app, dog_scan["id"].as_str().unwrap(), false).await;
    assert_eq!(dog_done["isCat"], false);
    let updates = subscription.await.unwrap();
    let last = &updates.last().unwrap()["data"]["scanUpdated"];
    assert_eq!(
        (last["status"].as_str(), last["isCat"].as_bool()),
        (Some("SUCCEEDED"), Some(true)),
        "{updates:?}"
    );

    // The handler's own writes come back on the stream (RUNNING, SUCCEEDED): they are not
    // work, and feeding them changes nothing. A record delivered twice is harmless too.
    let echoes = stream.next_event().await;
    let names = event_names(&echoes);
    assert!(
        names.iter().all(|n| n == "MODIFY:RUNNING" || n == "MODIFY:SUCCEEDED"),
        "{names:?}"
    );
    assert!(!names.is_empty());
    assert_eq!(
        pawql::scan_stream::invoke(&scanner, echoes).await.unwrap()["batchItemFailures"],
        json!([])
    );
    assert_eq!(
        wait_for_final(&app, &id, false).await["attempts"],
        1,
        "not scanned again"
    );

    // A forced re-scan is a MODIFY back to PENDING: work again.
    let forced = request_scan_of(&app, cat["id"].as_str().unwrap(), false, true).await;
    assert_eq!(forced["status"], "PENDING");
    let event = stream.next_event().await;
    assert_eq!(event_names(&event), ["MODIFY:PENDING"]);
    pawql::scan_stream::invoke(&scanner, event).await.unwrap();
    assert_eq!(wait_for_final(&app, &id, false).await["status"], "SUCCEEDED");
}

#[tokio::test]
async fn a_scan_store_failure_is_reported_for_retry_and_the_retry_finishes_it() {
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let (resources, clients) = resources(&app);
    let (id, event, sequence) = a_pending_scan_on_the_stream(&app, "images/cat_chelsea.png").await;

    // A handler whose scan table is gone (wrong name): the record is reported as failed.
    let broken = Resources {
        scan_table: format!("{}-missing", resources.scan_table),
        ..resources.clone()
    };
    let settings = CatalogSettings::default();
    let detector = offline_detector();
    let broken_scanner = scan_handler_with(
        BackendSpec::AwsResources {
            clients: clients.clone(),
            resources: broken,
        },
        &settings,
        detector.clone(),
    )
    .await;
    let response = pawql::scan_stream::invoke(&broken_scanner, event.clone())
        .await
        .unwrap();
    assert_eq!(
        response,
        json!({ "batchItemFailures": [{ "itemIdentifier": sequence }] })
    );

    // Lambda delivers the batch again: this time it works.
    let response = pawql::scan_stream::invoke(&stream_scanner(&app, detector).await, event)
        .await
        .unwrap();
    assert_eq!(response["batchItemFailures"], json!([]));
    assert_eq!(wait_for_final(&app, &id, false).await["isCat"], true);
}

#[tokio::test]
async fn the_rekognition_detector_goes_over_the_wire_and_its_answer_is_parsed() {
    // moto answers every DetectLabels with one canned label ("Mobile Phone", parents "Phone"):
    // enough to prove the request is made, answered and parsed. The cat rule itself is tested
    // on responses written in AWS's documented shape (detectors/rekognition.rs,
    // tests/fixtures/rekognition/: not recorded from a live account).
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let stage = app.stage().to_owned();
    let (resources, clients) = resources(&app);
    let detector = RekognitionDetector::new(clients.rekognition.clone(), clients.s3.clone(), &resources.bucket, 80.0);

    let jpeg = fixture("images/cat_kde_tabby_q85.jpg");
    let uploaded = app.upload("cat", "images/cat_kde_tabby_q85.jpg", 0.5).await;
    let id =
        resolvers::domain::image::ImageId::parse(uploaded["id"].as_str().unwrap(), &CatalogSettings::default().labels)
            .unwrap();
    let from_s3 = detector
        .detect(&ScanInput {
            sha256: Sha256Hex::of(&jpeg),
            kind: ImageKind::Jpeg,
            bytes: Some(jpeg.into()),
            image: Some(id),
        })
        .await
        .unwrap();
    assert!(!from_s3.is_cat);
    assert_eq!(from_s3.labels[0].name, "Mobile Phone");
    assert!((from_s3.labels[0].confidence - 0.999364).abs() < 1e-5);
    assert_eq!(from_s3.raw["Labels"][0]["Parents"][0]["Name"], "Phone");

    // WebP goes inline, transcoded.
    let webp = fixture("bad-inputs/cat.webp");
    let inline = detector
        .detect(&ScanInput {
            sha256: Sha256Hex::of(&webp),
            kind: ImageKind::WebP,
            bytes: Some(webp.into()),
            image: None,
        })
        .await
        .unwrap();
    assert_eq!(inline.labels[0].name, "Mobile Phone");

    // The whole handler with Rekognition, as deployed: the stream scanner of the stage.
    let mut stream = StreamReader::open(&app, &resources.scan_table).await;
    let scan = request_scan_of(&app, uploaded["id"].as_str().unwrap(), false, false).await;
    let scanner = scan_handler(
        &crate::iam::enforcing(&clients, &[crate::iam::Function::Scan], &stage),
        &stage,
    )
    .await;
    let event = stream.next_event().await;
    pawql::scan_stream::invoke(&scanner, event).await.unwrap();
    let done = wait_for_final(&app, scan["id"].as_str().unwrap(), false).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(done["detector"], "rekognition");
    assert_eq!(done["labels"][0]["name"], "Mobile Phone");
}

/// The offline detector with half a megabyte of extra raw output: debug data too large for a
/// DynamoDB item (400 KB).
struct BulkyDetector(Arc<dyn CatDetector>);

#[async_trait::async_trait]
impl CatDetector for BulkyDetector {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn detect(
        &self,
        input: &ScanInput,
    ) -> Result<resolvers::domain::detection::Detection, resolvers::domain::detection::DetectError> {
        let mut detection = self.0.detect(input).await?;
        detection.raw["padding"] = json!("x".repeat(500_000));
        Ok(detection)
    }
}

#[tokio::test]
async fn debug_data_too_large_for_an_item_is_kept_in_s3() {
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let (resources, clients) = resources(&app);
    let mut stream = StreamReader::open(&app, &resources.scan_table).await;
    let cat = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let dog = app.upload("dog", "images/dog_kde_golden.png", 0.5).await;
    let bulky = request_scan_of(&app, cat["id"].as_str().unwrap(), true, false).await;
    let small = request_scan_of(&app, dog["id"].as_str().unwrap(), true, false).await;
    let offline = offline_detector();
    let event = stream.next_event().await;
    // One batch, two scans: only the bulky one's debug data moves.
    let mut big_records = event.clone();
    big_records["Records"] = json!([event["Records"][0].clone()]);
    let mut small_records = event.clone();
    small_records["Records"] = json!([event["Records"][1].clone()]);
    let response = pawql::scan_stream::invoke(
        &stream_scanner(&app, Arc::new(BulkyDetector(offline.clone()))).await,
        big_records,
    )
    .await
    .unwrap();
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "the write did not fail on the item size"
    );
    pawql::scan_stream::invoke(&stream_scanner(&app, offline).await, small_records)
        .await
        .unwrap();

    let item = |id: String| {
        let clients = clients.clone();
        let table = resources.scan_table.clone();
        async move {
            clients
                .dynamodb
                .get_item()
                .table_name(table)
                .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id))
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };
    let bulky_id = bulky["id"].as_str().unwrap().to_owned();
    let done = wait_for_final(&app, &bulky_id, true).await;
    assert_eq!(done["status"], "SUCCEEDED", "{done}");
    assert_eq!(
        done["debug"]["raw"]["padding"].as_str().unwrap().len(),
        500_000,
        "debug data intact"
    );
    assert_eq!(done["debug"]["raw"]["probs"].as_array().unwrap().len(), 1000);
    let stored = item(bulky_id.clone()).await;
    let key = stored["debugKey"].as_s().unwrap();
    assert_eq!(key, &format!("scan-debug/{bulky_id}-1.json"));
    assert!(
        stored["record"].as_s().unwrap().len() < 100_000,
        "the item itself stays small"
    );
    let object = clients
        .s3
        .head_object()
        .bucket(&resources.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert!(object.content_length().unwrap() > 500_000);

    let small_id = small["id"].as_str().unwrap().to_owned();
    wait_for_final(&app, &small_id, true).await;
    assert!(
        !item(small_id).await.contains_key("debugKey"),
        "small debug data stays in the item"
    );
}

#[tokio::test]
async fn records_a_batch_has_no_time_for_are_reported_unstarted_for_redelivery() {
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let (id, event, sequence) = a_pending_scan_on_the_stream(&app, "images/cat_kde_tabby.png").await;
    let scanner = stream_scanner(&app, offline_detector()).await;

    // Less time left than one scan may take: not started, reported for redelivery, and the
    // scan is not claimed (no claim is burnt toward GAVE_UP).
    let almost_out = tokio::time::Instant::now() + scanner.settings().longest_run();
    let response = pawql::scan_stream::invoke_until(&scanner, event.clone(), almost_out)
        .await
        .unwrap();
    assert_eq!(
        response,
        json!({ "batchItemFailures": [{ "itemIdentifier": sequence }] })
    );
    let q = "query($id: ID!) { scanResult(id: $id) { status attempts } }";
    assert_eq!(
        app.data(q, json!({ "id": id })).await["scanResult"],
        json!({ "status": "PENDING", "attempts": 0 })
    );

    // Delivered again with time to spare: done.
    let response = pawql::scan_stream::invoke(&scanner, event).await.unwrap();
    assert_eq!(response, json!({ "batchItemFailures": [] }));
    assert_eq!(wait_for_final(&app, &id, false).await["attempts"], 1);
}

#[tokio::test]
async fn the_scheduled_sweep_finishes_scans_the_stream_never_did() {
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let id = a_pending_scan(&app, "images/cat_kde_tabby.png").await;
    let scanner = stream_scanner(&app, offline_detector()).await;

    // The schedule's event (EventBridge): a fresh scan is left to the stream.
    let scheduled = json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-24T12:00:00Z",
        "region": "eu-west-1", "resources": ["arn:aws:events:eu-west-1:123456789012:rule/pawql-sweep"], "detail": {}
    });
    assert_eq!(
        pawql::scan_stream::invoke(&scanner, scheduled).await.unwrap(),
        json!({ "swept": 0, "left": 0 })
    );
    let q = "query($id: ID!) { scanResult(id: $id) { status } }";
    assert_eq!(
        app.data(q, json!({ "id": id })).await["scanResult"]["status"],
        "PENDING"
    );

    // Stale (here: at once), but no time left in the invocation: left for the next sweep,
    // not started (so not claimed) and not lost.
    let no_time = tokio::time::Instant::now();
    let swept = pawql::scan_stream::sweep(&scanner, chrono::Duration::zero(), no_time)
        .await
        .unwrap();
    assert_eq!(swept, Swept { swept: 0, left: 1 });
    assert_eq!(
        app.data(q, json!({ "id": id })).await["scanResult"]["status"],
        "PENDING"
    );

    // With time, the sweep takes it over.
    let deadline = tokio::time::Instant::now() + pawql::scan_stream::FUNCTION_TIMEOUT;
    let swept = pawql::scan_stream::sweep(&scanner, chrono::Duration::zero(), deadline)
        .await
        .unwrap();
    assert_eq!(swept, Swept { swept: 1, left: 0 });
    let done = wait_for_final(&app, &id, false).await;
    assert_eq!(
        (done["status"].as_str(), done["isCat"].as_bool()),
        (Some("SUCCEEDED"), Some(true))
    );
    let swept = pawql::scan_stream::sweep(&scanner, chrono::Duration::zero(), deadline)
        .await
        .unwrap();
    assert_eq!(
        swept,
        Swept { swept: 0, left: 0 },
        "a final scan leaves the sparse index"
    );

    // Anything else is refused with a clear error.
    let err = pawql::scan_stream::invoke(&scanner, json!({ "hello": 1 }))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("not a DynamoDB stream batch"), "{err:#}");
}

/// A pending scan of a catalogue image with the bytes `id`.
fn pending(id: &str) -> resolvers::domain::scan::ScanRecord {
    use resolvers::domain::scan::{ScanRecord, ScanSource};
    let cat = resolvers::domain::label::LabelSet::default_pets().parse("cat").unwrap();
    let source = ScanSource::Image {
        id: resolvers::domain::image::ImageId::new(cat, Sha256Hex::parse(id).unwrap()),
    };
    ScanRecord::pending(Sha256Hex::parse(id).unwrap(), source, true, chrono::Utc::now())
}

/// `claimed`, finished with debug data of about `padding` bytes.
fn finished_with_debug(
    claimed: resolvers::domain::scan::ScanRecord,
    padding: usize,
) -> resolvers::domain::scan::ScanRecord {
    use resolvers::domain::scan::{ScanDebug, ScanRecord, ScanStatus};
    let id = claimed.id.clone();
    ScanRecord {
        status: ScanStatus::Succeeded,
        finished_at: Some(chrono::Utc::now()),
        debug: Some(ScanDebug {
            raw: Some(json!({ "padding": "x".repeat(padding) })),
            timings: vec![("detect".into(), 1.0)],
            log: vec![format!("scan={id} done")],
        }),
        ..claimed
    }
}

#[tokio::test]
async fn ordinary_scan_reads_leave_debug_data_where_it_is() {
    use resolvers::ports::ScanStore;
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let (resources, clients) = resources(&app);
    // Each side with its own function's role: the API records and reads scans, the scan
    // handler claims and finishes them (and writes the debug data).
    let stage = crate::iam::stage_of(&resources);
    let scans_as = |function: &'static [crate::iam::Function]| {
        aws::open_resources(
            &crate::iam::enforcing(&clients, function, &stage),
            resources.clone(),
            &resolvers::CatalogSettings::default(),
        )
        .scans
    };
    let scans = scans_as(&[crate::iam::Function::Api]);
    let handler = scans_as(&[crate::iam::Function::Scan]);
    for (id, padding, where_kept) in [("a".repeat(64), 1_000, "debug"), ("b".repeat(64), 500_000, "debugKey")] {
        scans.request(pending(&id), false).await.unwrap();
        let claimed = handler
            .claim(&crate::scan::scan_id(&id), false)
            .await
            .unwrap()
            .expect("claimed");
        let record = finished_with_debug(claimed, padding);
        assert!(handler.finish(record.clone()).await.unwrap());

        // The item: the record without debug data, the debug data beside it (or in S3).
        let item = clients
            .dynamodb
            .get_item()
            .table_name(&resources.scan_table)
            .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.clone()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        let in_record: Value = serde_json::from_str(item["record"].as_s().unwrap()).unwrap();
        assert_eq!(
            in_record["debug"],
            Value::Null,
            "{padding}: the record carries no debug data"
        );
        assert!(item.contains_key(where_kept), "{padding}: kept in {where_kept}");

        // What scanResult, Image.scan and the subscriptions read: no debug data at all.
        let scan_id = crate::scan::scan_id(&id);
        assert_eq!(scans.get(&scan_id).await.unwrap().unwrap().debug, None);
        let many = scans.get_many(&[&scan_id]).await.unwrap();
        assert_eq!(many[&scan_id].debug, None);
        // What an admin's Scan.debug reads.
        assert_eq!(scans.debug_of(&scan_id).await.unwrap(), record.debug, "{padding}");
    }
}

#[tokio::test]
async fn a_debug_object_written_for_a_write_that_lost_its_condition_is_removed() {
    use resolvers::ports::ScanStore;
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let (resources, clients) = resources(&app);
    let scans = aws::open_resources(&clients, resources.clone(), &resolvers::CatalogSettings::default()).scans;
    let id = "c".repeat(64);
    scans.request(pending(&id), false).await.unwrap();
    let first = scans
        .claim(&crate::scan::scan_id(&id), false)
        .await
        .unwrap()
        .expect("first claim");
    let stale = finished_with_debug(first, 500_000);
    // A second worker reclaims it (attempt 2): the first one's finish must lose, and leave
    // no debug object behind.
    scans
        .claim(&crate::scan::scan_id(&id), true)
        .await
        .unwrap()
        .expect("reclaimed");
    assert!(
        !scans.finish(stale).await.unwrap(),
        "a stale worker's result is dropped"
    );
    let listed = clients
        .s3
        .list_objects_v2()
        .bucket(&resources.bucket)
        .prefix("scan-debug/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 0, "{:?}", listed.contents());
}
