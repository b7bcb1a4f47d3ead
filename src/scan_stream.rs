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
//! records dead-lettered, or its worker killed), found through the scan table's sparse index
//! of unfinished scans. So no scan stays unfinished for good.
//!
//! Every invocation works against its deadline: a scan is started only while the time left
//! covers the longest a scan can take ([`ScanSettings::longest_run`]). A stream record not
//! started in time is reported as a batch-item failure (Lambda delivers it again, unclaimed);
//! a sweep that runs out of time leaves the rest to the next sweep. An invocation killed by
//! its timeout would report nothing, and Lambda would retry the whole batch.

use anyhow::Context;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::Utc;
use futures_util::StreamExt;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use resolvers::domain::image::Sha256Hex;
use resolvers::scanning::Scanner;
use serde_dynamo::AttributeValue;
use tokio::time::Instant;

/// Scans of one batch worked on at once (Rekognition calls are I/O, not CPU, here).
const CONCURRENT_SCANS: usize = 4;

/// The id of the scan a stream record asks to be worked on: an insert or modify whose new
/// image is `PENDING`. Anything else (the scan's own `RUNNING`/final writes, TTL removals)
/// is not work, should the event filter ever let it through.
pub fn pending_scan_id(record: &aws_lambda_events::event::dynamodb::EventRecord) -> Option<Sha256Hex> {
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
    // A key that is no scan id is no scan of ours: skipped, not retried for ever.
    text(&record.change.keys, "id").and_then(|id| Sha256Hex::parse(&id))
}

/// Kept free at the end of an invocation: writing the response, and the scans' last writes.
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a scan started now can finish before `deadline`.
fn time_for_a_scan(scanner: &Scanner, deadline: Instant) -> bool {
    Instant::now() + scanner.settings().longest_run() + DEADLINE_MARGIN <= deadline
}

/// Works on one batch before `deadline`; returns the records Lambda must deliver again.
pub async fn handle(scanner: &Scanner, event: Event, deadline: Instant) -> DynamoDbEventResponse {
    let work: Vec<(Sha256Hex, Option<String>)> = event
        .records
        .iter()
        .filter_map(|record| pending_scan_id(record).map(|id| (id, record.change.sequence_number.clone())))
        .collect();
    let failed: Vec<Option<String>> = futures_util::stream::iter(work)
        .map(|(id, sequence_number)| async move {
            if !time_for_a_scan(scanner, deadline) {
                tracing::warn!(scan = %id, "not started: too little time left in this invocation; the record is retried");
                return Some(sequence_number);
            }
            // The hard stop, should a scan outlast its own bound: the record is retried
            // (and reclaimed) rather than the invocation killed with the whole batch.
            match tokio::time::timeout_at(deadline - DEADLINE_MARGIN / 2, scanner.run(&id, true)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => {
                    tracing::error!(scan = %id, error = format!("{e:#}"), "scan store failed; the record is retried");
                    Some(sequence_number)
                }
                Err(_) => {
                    tracing::error!(scan = %id, "scan cut off at the invocation's deadline; the record is retried");
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

/// What a sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    /// Scans taken over and worked on.
    pub swept: usize,
    /// Stale scans left for the next sweep: this invocation ran out of time for them.
    pub left: usize,
}

/// Works on every scan unfinished and untouched for `after`, as long as `deadline` leaves
/// time for another scan.
pub async fn sweep(scanner: &Scanner, after: chrono::Duration, deadline: Instant) -> anyhow::Result<Swept> {
    let stale = scanner.scans().unfinished(Utc::now() - after).await?;
    if !stale.is_empty() {
        tracing::warn!(count = stale.len(), "sweeping scans the stream did not finish");
    }
    let results: Vec<Option<anyhow::Result<()>>> = futures_util::stream::iter(stale.iter())
        .map(|id| async move {
            if !time_for_a_scan(scanner, deadline) {
                return None;
            }
            Some(scanner.run(id, true).await)
        })
        .buffer_unordered(CONCURRENT_SCANS)
        .collect()
        .await;
    let mut swept = Swept { swept: 0, left: 0 };
    for result in results {
        match result {
            Some(done) => {
                done?;
                swept.swept += 1;
            }
            None => swept.left += 1,
        }
    }
    if swept.left > 0 {
        tracing::warn!(left = swept.left, "sweep out of time; the next sweep takes the rest");
    }
    Ok(swept)
}

/// The scan function's timeout in `serverless.yml`: what [`invoke`] assumes for a deadline.
pub const FUNCTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// [`invoke_until`] with the deadline of an invocation that starts now.
pub async fn invoke(scanner: &Scanner, event: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    invoke_until(scanner, event, Instant::now() + FUNCTION_TIMEOUT).await
}

/// Runs one invocation: a DynamoDB stream batch (with `Records`), or the sweep's scheduled
/// event (EventBridge, `source: aws.events`), before `deadline`. Returns the JSON response
/// Lambda hands back. [`run`] serves every invocation through this; tests call it with events.
pub async fn invoke_until(
    scanner: &Scanner,
    event: serde_json::Value,
    deadline: Instant,
) -> anyhow::Result<serde_json::Value> {
    if event.get("Records").is_some() {
        let event: Event = serde_json::from_value(event).context("DynamoDB stream event")?;
        return Ok(serde_json::to_value(handle(scanner, event, deadline).await)?);
    }
    if event.get("source").and_then(|s| s.as_str()) == Some("aws.events") {
        let swept = sweep(scanner, SWEEP_AFTER, deadline).await?;
        return Ok(serde_json::to_value(swept)?);
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
        // The invocation's deadline (epoch milliseconds) as a point on this process' clock.
        let left = std::time::Duration::from_millis(event.context.deadline).saturating_sub(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        async move {
            invoke_until(&scanner, event.payload, Instant::now() + left)
                .await
                .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!("Lambda runtime: {e}"))
}
