//! `scanTable` on DynamoDB: one item per scan id (the SHA-256 of the scanned bytes).
//!
//! The record is kept as JSON in `record`, with the attributes conditions need beside it:
//! `status`, `attempts` and `expiresAtEpoch` (the table's TTL attribute: scans of scan-only
//! uploads expire). Every transition is a conditional `PutItem` on the state it starts from,
//! so two workers cannot both claim a scan and a stale worker cannot overwrite a newer result.
//!
//! Debug data (a detector's raw output, timings, log lines: up to hundreds of KB) is kept
//! apart from the record, in the item's `debug` attribute, and every ordinary read projects
//! `record` only: `scanResult`, `Image.scan` and the subscriptions' polls pay for the verdict,
//! not for data only an admin reads ([`DynamoScanStore::debug_of`] reads it when asked).
//! DynamoDB items stop at 400 KB: debug data that would pass [`MAX_INLINE_RECORD_BYTES`]
//! goes to S3 instead, under a key named in the item's `debugKey` (one object per attempt, so
//! a stale worker cannot overwrite the debug data of the attempt that won; an object written
//! for a write that then lost its condition is removed). Debug objects expire after 30 days
//! (`scan-debug/`, the bucket's lifecycle rule); those of scan-only uploads live under
//! `scan-uploads/` and expire with them.
//!
//! Unfinished scans are found through a sparse index, [`UNFINISHED_SCANS_INDEX`]: only items
//! `PENDING` or `RUNNING` carry its keys (`unfinishedShard`, `touchedAt`: when the scan was
//! requested or last claimed, epoch milliseconds), and every write replaces the whole item, so a scan leaves the
//! index the moment it is final. The sweep reads ids only (`KEYS_ONLY`), of scans untouched
//! for long enough, from [`UNFINISHED_SHARDS`] small queries: no `Scan`, no debug data, a cost
//! that grows with the scans in flight, not with every scan ever kept.

use std::collections::HashMap;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::Client;
use aws_sdk_s3::primitives::ByteStream;
use chrono::Utc;
use resolvers::domain::image::Sha256Hex;
use resolvers::domain::scan::{ScanDebug, ScanRecord, ScanRequested, ScanSource, ScanStatus};
use resolvers::ports::ScanStore;

use super::batch_get::batch_get_projected;
use super::items::{n, s, Item};
use super::s3_image_store::SCAN_UPLOAD_PREFIX;
use tracing::instrument;

/// The sparse index of unfinished scans (partition `unfinishedShard`, sort `touchedAt`).
pub const UNFINISHED_SCANS_INDEX: &str = "UnfinishedScans";

/// Partitions of the unfinished-scan index. One would be enough for the sweep, but every
/// scan writes the index twice (in, then out), and one partition of an index takes about
/// 1,000 writes a second: four spread a burst of scans, and the sweep pays four tiny queries.
pub const UNFINISHED_SHARDS: u32 = 4;

/// The index partition of a scan: from its id (a SHA-256 in hex), so it is stable.
fn unfinished_shard(id: &str) -> String {
    let first = id.chars().next().and_then(|c| c.to_digit(16)).unwrap_or(0);
    format!("shard-{}", first % UNFINISHED_SHARDS)
}

/// Records longer than this (as JSON) keep their debug data in S3: well under DynamoDB's
/// 400 KB item limit, which also counts attribute names and the other attributes.
pub const MAX_INLINE_RECORD_BYTES: usize = 300 * 1024;

/// The DynamoDB implementation of [`ScanStore`].
pub struct DynamoScanStore {
    client: Client,
    table: String,
    /// Where large debug data goes: the stage's bucket.
    s3: aws_sdk_s3::Client,
    bucket: String,
}

/// The S3 key of a record's debug data when it is too large to stay in the item.
fn debug_key(record: &ScanRecord) -> String {
    match record.source {
        ScanSource::Upload { .. } => format!("{SCAN_UPLOAD_PREFIX}debug/{}-{}.json", record.id, record.attempts),
        ScanSource::Image { .. } => format!("scan-debug/{}-{}.json", record.id, record.attempts),
    }
}

fn status_name(status: ScanStatus) -> &'static str {
    match status {
        ScanStatus::Pending => "PENDING",
        ScanStatus::Running => "RUNNING",
        ScanStatus::Succeeded => "SUCCEEDED",
        ScanStatus::Failed => "FAILED",
    }
}

/// The only attribute ordinary reads fetch: the record without its debug data.
const RECORD: &str = "record";

/// The item of a record whose JSON (without debug data) is `json`.
fn item(record: &ScanRecord, json: String) -> Item {
    let mut item = Item::from([
        ("id".to_owned(), s(record.id.as_str())),
        ("status".to_owned(), s(status_name(record.status))),
        ("attempts".to_owned(), n(record.attempts)),
        ("record".to_owned(), s(json)),
    ]);
    if let Some(at) = record.expires_at {
        item.insert("expiresAtEpoch".to_owned(), n(at.timestamp()));
    }
    if let Some(touched) = record.touched_at() {
        item.insert("unfinishedShard".to_owned(), s(unfinished_shard(record.id.as_str())));
        item.insert("touchedAt".to_owned(), n(touched.timestamp_millis()));
    }
    item
}

/// DynamoDB's TTL deletes expired items only eventually: treat them as gone at once.
fn live(record: ScanRecord) -> Option<ScanRecord> {
    record.expires_at.is_none_or(|at| at > Utc::now()).then_some(record)
}

impl DynamoScanStore {
    /// Scans in `table`; debug data too large for an item goes to `bucket`.
    pub fn new(
        client: Client,
        table: impl Into<String>,
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
    ) -> DynamoScanStore {
        DynamoScanStore {
            client,
            table: table.into(),
            s3,
            bucket: bucket.into(),
        }
    }

    /// The item for `record`: the record without debug data in `record`, the debug data in
    /// `debug`, or in S3 (named by `debugKey`) when the item would be too large. Returns the
    /// S3 key written, if any, so a write that does not happen can take it back.
    async fn item_for(&self, record: &ScanRecord) -> anyhow::Result<(Item, Option<String>)> {
        let slim = ScanRecord {
            debug: None,
            ..record.clone()
        };
        let json = serde_json::to_string(&slim)?;
        let mut item = item(&slim, json.clone());
        let Some(debug) = record.debug.as_ref() else {
            return Ok((item, None));
        };
        let debug_json = serde_json::to_string(debug)?;
        if json.len() + debug_json.len() <= MAX_INLINE_RECORD_BYTES {
            item.insert("debug".to_owned(), s(debug_json));
            return Ok((item, None));
        }
        let key = debug_key(record);
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(debug_json.into_bytes()))
            .send()
            .await
            .with_context(|| format!("S3 PutObject {key} (scan debug data)"))?;
        item.insert("debugKey".to_owned(), s(key.clone()));
        Ok((item, Some(key)))
    }

    /// The record an item holds (debug data only where an old item kept it inside).
    fn record(item: &Item) -> anyhow::Result<ScanRecord> {
        let json = item
            .get(RECORD)
            .and_then(|v| v.as_s().ok())
            .context("scan item without record")?;
        Ok(serde_json::from_str(json)?)
    }

    /// The debug data an item points at: its `debug` attribute, its S3 object, or (items
    /// written before debug data moved out) the record's own.
    async fn debug_in(&self, item: &Item) -> anyhow::Result<Option<ScanDebug>> {
        if let Some(json) = item.get("debug").and_then(|v| v.as_s().ok()) {
            return Ok(Some(serde_json::from_str(json).context("scan debug data")?));
        }
        if let Some(key) = item.get("debugKey").and_then(|v| v.as_s().ok()) {
            let object = match self.s3.get_object().bucket(&self.bucket).key(key).send().await {
                Ok(object) => object,
                Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                    tracing::info!(key, "scan debug data expired (kept 30 days)");
                    return Ok(None);
                }
                Err(err) => return Err(err).with_context(|| format!("S3 GetObject {key} (scan debug data)")),
            };
            let bytes = object
                .body
                .collect()
                .await
                .with_context(|| format!("reading {key}"))?
                .into_bytes();
            return Ok(Some(
                serde_json::from_slice::<ScanDebug>(&bytes).with_context(|| format!("debug data {key}"))?,
            ));
        }
        Ok(Self::record(item)?.debug)
    }

    /// Puts `record` if `condition` holds; false when it does not.
    async fn put_if(&self, record: &ScanRecord, condition: &str, values: Item) -> anyhow::Result<bool> {
        let (item, debug_object) = self.item_for(record).await?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        // DynamoDB refuses names an expression does not use, so only the used ones go.
        for (placeholder, attribute) in [
            ("#id", "id"),
            ("#status", "status"),
            ("#attempts", "attempts"),
            ("#expires", "expiresAtEpoch"),
        ] {
            if condition.contains(placeholder) {
                request = request.expression_attribute_names(placeholder, attribute);
            }
        }
        if !values.is_empty() {
            request = request.set_expression_attribute_values(Some(values));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(err)) if err.err().is_conditional_check_failed_exception() => {
                // Nothing was written, so nothing points at the debug object written for it.
                if let Some(key) = debug_object {
                    if let Err(e) = self.s3.delete_object().bucket(&self.bucket).key(&key).send().await {
                        tracing::warn!(key, error = %e, "could not remove the debug object of a lost write");
                    }
                }
                Ok(false)
            }
            // Unknown whether it was written (a timeout after DynamoDB acted): the object stays.
            Err(err) => Err(err).with_context(|| format!("DynamoDB PutItem {}", self.table)),
        }
    }

    /// A scan's item, strongly consistent: only its `record` attribute, or (for an admin's
    /// debug data) all of it.
    async fn get_item(&self, id: &str, record_only: bool) -> anyhow::Result<Option<Item>> {
        let mut request = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .consistent_read(true);
        if record_only {
            request = request
                .projection_expression("#record")
                .expression_attribute_names("#record", RECORD);
        }
        let output = request
            .send()
            .await
            .with_context(|| format!("DynamoDB GetItem {}", self.table))?;
        Ok(output.item)
    }

    /// The record of a scan, strongly consistent, without its debug data.
    async fn read(&self, id: &str) -> anyhow::Result<Option<ScanRecord>> {
        self.get_item(id, true).await?.as_ref().map(Self::record).transpose()
    }
}

#[async_trait]
impl ScanStore for DynamoScanStore {
    #[instrument(level = "debug", skip_all, fields(scan = %id))]
    async fn get(&self, id: &Sha256Hex) -> anyhow::Result<Option<ScanRecord>> {
        Ok(self.read(id.as_str()).await?.and_then(live))
    }

    /// One strongly consistent `BatchGetItem` per 100 scans (`Image.scan` over `randomImages`).
    #[instrument(level = "debug", skip_all)]
    async fn get_many(&self, ids: &[&Sha256Hex]) -> anyhow::Result<HashMap<Sha256Hex, ScanRecord>> {
        // `ids` are distinct (the port's contract): DynamoDB refuses a batch naming a key twice.
        let keys = ids
            .iter()
            .map(|id| Item::from([("id".to_owned(), s(id.as_str()))]))
            .collect();
        let mut found = HashMap::new();
        for item in batch_get_projected(&self.client, &self.table, keys, Some(&[RECORD])).await? {
            if let Some(record) = live(Self::record(&item)?) {
                found.insert(record.id.clone(), record);
            }
        }
        Ok(found)
    }

    /// The whole item, read only for an admin's `Scan.debug`.
    #[instrument(level = "debug", skip_all, fields(scan = %id))]
    async fn debug_of(&self, id: &Sha256Hex) -> anyhow::Result<Option<ScanDebug>> {
        match self.get_item(id.as_str(), false).await? {
            Some(item) => self.debug_in(&item).await,
            None => Ok(None),
        }
    }

    #[instrument(level = "debug", skip_all)]
    async fn request(&self, pending: ScanRecord, force: bool) -> anyhow::Result<ScanRequested> {
        let now = Utc::now().timestamp();
        let mut condition = "attribute_not_exists(#id) OR #expires < :now".to_owned();
        let mut values = Item::from([(":now".to_owned(), n(now))]);
        if force {
            condition.push_str(" OR #status IN (:succeeded, :failed)");
            values.insert(":succeeded".to_owned(), s("SUCCEEDED"));
            values.insert(":failed".to_owned(), s("FAILED"));
        }
        // Two rounds at most: a scan that vanishes (expires) between the failed write and the
        // read is written on the second.
        for _ in 0..2 {
            if self.put_if(&pending, &condition, values.clone()).await? {
                return Ok(ScanRequested::New(pending));
            }
            if let Some(existing) = self.get(&pending.id).await? {
                return Ok(ScanRequested::Existing(existing));
            }
        }
        anyhow::bail!("scan {} neither written nor found", pending.id)
    }

    #[instrument(level = "debug", skip_all, fields(scan = %id))]
    async fn claim(&self, id: &Sha256Hex, reclaim: bool) -> anyhow::Result<Option<ScanRecord>> {
        let Some(current) = self.read(id.as_str()).await? else {
            return Ok(None);
        };
        let claimable = current.status == ScanStatus::Pending || (reclaim && current.status == ScanStatus::Running);
        if !claimable {
            return Ok(None);
        }
        let values = Item::from([
            (":status".to_owned(), s(status_name(current.status))),
            (":attempts".to_owned(), n(current.attempts)),
        ]);
        let current = current.claimed(Utc::now());
        let claimed = self
            .put_if(&current, "#status = :status AND #attempts = :attempts", values)
            .await?;
        Ok(claimed.then_some(current))
    }

    #[instrument(level = "debug", skip_all)]
    async fn finish(&self, record: ScanRecord) -> anyhow::Result<bool> {
        // Only the claim that took this attempt may finish it.
        let values = Item::from([
            (":running".to_owned(), s("RUNNING")),
            (":attempts".to_owned(), n(record.attempts)),
        ]);
        self.put_if(&record, "#status = :running AND #attempts = :attempts", values)
            .await
    }

    /// One `Query` per shard of the sparse index. An index is eventually consistent: a scan
    /// finished a moment ago may still be listed, which costs only a claim that finds it
    /// final; one just requested may be missing, and is the next sweep's (or the stream's).
    #[instrument(level = "debug", skip_all)]
    async fn unfinished(&self, untouched_since: chrono::DateTime<Utc>) -> anyhow::Result<Vec<Sha256Hex>> {
        let mut out = Vec::new();
        for shard in 0..UNFINISHED_SHARDS {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(UNFINISHED_SCANS_INDEX)
                .key_condition_expression("#shard = :shard AND #touched < :since")
                .expression_attribute_names("#shard", "unfinishedShard")
                .expression_attribute_names("#touched", "touchedAt")
                .expression_attribute_values(":shard", s(format!("shard-{shard}")))
                .expression_attribute_values(":since", n(untouched_since.timestamp_millis()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.with_context(|| format!("DynamoDB Query {}/{UNFINISHED_SCANS_INDEX}", self.table))?;
                out.extend(
                    page.items()
                        .iter()
                        .filter_map(|item| Sha256Hex::parse(item.get("id")?.as_s().ok()?)),
                );
            }
        }
        Ok(out)
    }
}
