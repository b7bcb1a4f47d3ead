//! The AWS request budget, counted by an SDK interceptor on the real clients: every request
//! that got a response from moto is recorded as `service.Operation`, so an extra read shows up
//! here. (Counted on the response side because presigning runs the request pipeline up to
//! signing without sending anything; a presigned URL is not a request.)

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use pawql::adapters::aws::AwsClients;
use serde_json::json;

use crate::helpers::{spawn_aws_api_with_clients, spawn_aws_app_with_clients};
use crate::moto::MotoServer;

/// Records each request when its response arrives.
#[derive(Debug, Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
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

#[tokio::test]
async fn each_operation_stays_within_its_aws_request_budget() {
    let log = RequestLog::default();
    let app = spawn_aws_app_with_clients(logged_clients(&log).await).await;
    // Start-up: the stage's parameters, once; and the scan worker's look for scans left
    // unfinished (a background task, so wait for it before counting anything else).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !log.0.lock().unwrap().iter().any(|r| r == "dynamodb.Scan") {
        assert!(
            std::time::Instant::now() < deadline,
            "no recovery scan: {:?}",
            log.0.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(log.take(), ["ssm.GetParametersByPath", "dynamodb.Scan"]);

    app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let upload = log.take();
    assert_eq!(
        upload.iter().filter(|r| r.starts_with("s3.")).collect::<Vec<_>>(),
        ["s3.PutObject"],
        "an upload writes the object once and reads nothing from S3: {upload:?}"
    );
    assert_eq!(
        upload.iter().filter(|r| r.starts_with("dynamodb.")).collect::<Vec<_>>(),
        ["dynamodb.GetItem", "dynamodb.GetItem", "dynamodb.TransactWriteItems"],
        "is it new, the chunk info, then row and chunk info in one transaction: {upload:?}"
    );

    app.random_image("cat", "url").await;
    assert_eq!(
        log.take(),
        ["dynamodb.GetItem", "dynamodb.Query"],
        "randomImage {{ url }} is chunk info + one chunk, and no S3 request (the URL is signed locally)"
    );

    app.random_image("cat", "base64").await;
    assert_eq!(
        log.take(),
        ["dynamodb.GetItem", "dynamodb.Query", "s3.GetObject"],
        "base64 adds exactly the one S3 read"
    );

    // Many draws from one chunk still cost one chunk query.
    for count in [10, 50] {
        app.data(
            &format!("{{ randomImages(label: \"cat\", count: {count}) {{ url }} }}"),
            json!({}),
        )
        .await;
        assert_eq!(
            log.take(),
            ["dynamodb.GetItem", "dynamodb.Query"],
            "randomImages({count})"
        );
    }

    app.data("{ labels { label imageCount } }", json!({})).await;
    assert_eq!(
        log.take(),
        ["dynamodb.BatchGetItem"],
        "every configured label's chunk info in one request (it was a GetItem per label)"
    );

    // Image.scan over a list: the scans of every image in the response in one batched read
    // (it was a GetItem per image: 50 here).
    app.upload("cat", "images/cat_kde_tabby.png", 0.5).await;
    log.take();
    let drawn = app
        .data(
            "{ randomImages(label: \"cat\", count: 50) { id scan { status } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        log.take(),
        ["dynamodb.GetItem", "dynamodb.Query", "dynamodb.BatchGetItem"],
        "chunk info, the chunk, then every drawn image's scan in one BatchGetItem"
    );
    let distinct: std::collections::BTreeSet<&str> = drawn["randomImages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["id"].as_str().unwrap())
        .collect();
    assert_eq!(distinct.len(), 2, "50 draws of two equal weights meet both: {drawn}");
}

#[tokio::test]
async fn a_scan_costs_its_budget_on_the_lambda_path() {
    let log = RequestLog::default();
    let clients = logged_clients(&log).await;
    let (app, stage) = spawn_aws_api_with_clients(clients.clone()).await;
    assert_eq!(log.take(), ["ssm.GetParametersByPath"], "the API function's cold start");
    let uploaded = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    log.take();

    // requestScan on Lambda only records the pending scan (the stream does the rest).
    let scan = crate::scan::request_scan_of(&app, uploaded["id"].as_str().unwrap(), false, false).await;
    let id = scan["id"].as_str().unwrap().to_owned();
    assert_eq!(
        log.take(),
        ["dynamodb.GetItem", "dynamodb.PutItem"],
        "the image row, then the pending scan put only if no scan of these bytes exists (no read first)"
    );

    // The scan handler, as the stream invokes it: Rekognition reads the object from S3 itself.
    let scanner = pawql::app::aws_stream_scanner(&clients, &stage, &resolvers::CatalogSettings::default(), 80.0)
        .await
        .unwrap();
    assert_eq!(
        log.take(),
        ["ssm.GetParametersByPath"],
        "the scan function's cold start"
    );
    scanner.run(&id, true).await.unwrap();
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
}
