//! The scan handler on AWS: the scan table's DynamoDB stream invokes it with batches of
//! changed scan items, and it works on every scan that became `PENDING`.
//!
//! `requestScan` on the API function only writes the pending item; the event source mapping in
//! `serverless.yml` (filtered to `PENDING` new images) delivers it here. Each record's scan is
//! claimed with `reclaim`: a record is only delivered again when the invocation that had it
//! failed or timed out, so a `RUNNING` scan met here was left by a dead worker. (The scanner's
//! claim cap ends a scan that kills every worker with `GAVE_UP`.)
//!
//! A scan whose *store* fails (the detector's failures end in `FAILED` inside the scanner) is
//! reported in `batchItemFailures`, so Lambda retries from that record; when its retries are
//! spent the record goes to the failure destination (an SQS dead-letter queue).
//!
//! What the stream cannot finish, the sweep does: a schedule invokes the same handler, which
//! takes over every scan left `PENDING` or `RUNNING` for longer than [`SWEEP_AFTER`] (its
//! records dead-lettered, or its worker killed). So no scan stays unfinished for good.

use anyhow::Context;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::Utc;
use futures_util::StreamExt;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use resolvers::scanning::Scanner;
use serde_dynamo::AttributeValue;

/// Scans of one batch worked on at once (Rekognition calls are I/O, not CPU, here).
const CONCURRENT_SCANS: usize = 4;

/// The id of the scan a stream record asks to be worked on: an insert or modify whose new
/// image is `PENDING`. Anything else (the scan's own `RUNNING`/final writes, TTL removals)
/// is not work, should the event filter ever let it through.
pub fn pending_scan_id(record: &aws_lambda_events::event::dynamodb::EventRecord) -> Option<String> {
    if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
        return None;
    }
    let text = |item: &serde_dynamo::Item, name: &str| match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    if text(&record.change.new_image, "status").as_deref() != Some("PENDING") {
        return None;
    }
    text(&record.change.keys, "id")
}

/// Works on one batch; returns the records Lambda must deliver again.
pub async fn handle(scanner: &Scanner, event: Event) -> DynamoDbEventResponse {
    let work: Vec<(String, Option<String>)> = event
        .records
        .iter()
        .filter_map(|record| pending_scan_id(record).map(|id| (id, record.change.sequence_number.clone())))
        .collect();
    let failed: Vec<Option<String>> = futures_util::stream::iter(work)
        .map(|(id, sequence_number)| async move {
            match scanner.run(&id, true).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::error!(scan = %id, error = format!("{e:#}"), "scan store failed; the record is retried");
                    Some(sequence_number)
                }
            }
        })
        .buffer_unordered(CONCURRENT_SCANS)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|sequence_number| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = sequence_number;
            failure
        })
        .collect();
    response
}

/// A scan untouched this long is taken over by the sweep: far past the scan function's
/// timeout (2 minutes) and the stream's retries, so its worker is surely gone.
pub const SWEEP_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// Works on every scan unfinished and untouched for `after`; returns how many it took.
pub async fn sweep(scanner: &Scanner, after: chrono::Duration) -> anyhow::Result<usize> {
    let now = Utc::now();
    let stale: Vec<String> = scanner
        .scans
        .unfinished()
        .await?
        .into_iter()
        .filter(|scan| scan.is_stale(now, after))
        .map(|scan| scan.id)
        .collect();
    if !stale.is_empty() {
        tracing::warn!(count = stale.len(), "sweeping scans the stream did not finish");
    }
    let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(stale.iter())
        .map(|id| scanner.run(id, true))
        .buffer_unordered(CONCURRENT_SCANS)
        .collect()
        .await;
    for result in results {
        result?;
    }
    Ok(stale.len())
}

/// Runs one invocation: a DynamoDB stream batch (with `Records`), or the sweep's scheduled
/// event (EventBridge, `source: aws.events`). Returns the JSON response Lambda hands back.
/// [`run`] serves every invocation through this; tests call it with recorded events.
pub async fn invoke(scanner: &Scanner, event: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    if event.get("Records").is_some() {
        let event: Event = serde_json::from_value(event).context("DynamoDB stream event")?;
        return Ok(serde_json::to_value(handle(scanner, event).await)?);
    }
    if event.get("source").and_then(|s| s.as_str()) == Some("aws.events") {
        let swept = sweep(scanner, SWEEP_AFTER).await?;
        return Ok(serde_json::json!({ "swept": swept }));
    }
    anyhow::bail!(
        "not a DynamoDB stream batch nor a scheduled sweep: {}",
        crate::lambda::describe_event(&event)
    )
}

/// Serves scan handler invocations until the runtime shuts the process down.
pub async fn run(scanner: Scanner) -> anyhow::Result<()> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let scanner = scanner.clone();
        async move {
            invoke(&scanner, event.payload)
                .await
                .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}
