//! `scanTable` on DynamoDB: one item per scan id (the SHA-256 of the scanned bytes).
//!
//! The record is kept as JSON in `record`, with the attributes conditions need beside it:
//! `status`, `attempts` and `expiresAtEpoch` (the table's TTL attribute: scans of scan-only
//! uploads expire). Every transition is a conditional `PutItem` on the state it starts from,
//! so two workers cannot both claim a scan and a stale worker cannot overwrite a newer result.

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::Utc;
use resolvers::domain::scan::{ScanRecord, ScanRequested, ScanStatus};
use resolvers::ports::ScanStore;

use super::items::{n, s, Item};

/// The DynamoDB implementation of [`ScanStore`].
pub struct DynamoScanStore {
    client: Client,
    table: String,
}

fn status_name(status: ScanStatus) -> &'static str {
    match status {
        ScanStatus::Pending => "PENDING",
        ScanStatus::Running => "RUNNING",
        ScanStatus::Succeeded => "SUCCEEDED",
        ScanStatus::Failed => "FAILED",
    }
}

fn item(record: &ScanRecord) -> anyhow::Result<Item> {
    let mut item = Item::from([
        ("id".to_owned(), s(record.id.as_str())),
        ("status".to_owned(), s(status_name(record.status))),
        ("attempts".to_owned(), n(record.attempts)),
        ("record".to_owned(), s(serde_json::to_string(record)?)),
    ]);
    if let Some(at) = record.expires_at {
        item.insert("expiresAtEpoch".to_owned(), n(at.timestamp()));
    }
    Ok(item)
}

fn record(item: &Item) -> anyhow::Result<ScanRecord> {
    let json = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .context("scan item without record")?;
    Ok(serde_json::from_str(json)?)
}

/// DynamoDB's TTL deletes expired items only eventually: treat them as gone at once.
fn live(record: ScanRecord) -> Option<ScanRecord> {
    record.expires_at.is_none_or(|at| at > Utc::now()).then_some(record)
}

impl DynamoScanStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoScanStore {
        DynamoScanStore {
            client,
            table: table.into(),
        }
    }

    /// Puts `record` if `condition` holds; false when it does not.
    async fn put_if(&self, record: &ScanRecord, condition: &str, values: Item) -> anyhow::Result<bool> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(record)?))
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
            Err(SdkError::ServiceError(err)) if err.err().is_conditional_check_failed_exception() => Ok(false),
            Err(err) => Err(err).with_context(|| format!("DynamoDB PutItem {}", self.table)),
        }
    }

    async fn read(&self, id: &str) -> anyhow::Result<Option<ScanRecord>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("DynamoDB GetItem {}", self.table))?;
        output.item.as_ref().map(record).transpose()
    }
}

#[async_trait]
impl ScanStore for DynamoScanStore {
    async fn get(&self, id: &str) -> anyhow::Result<Option<ScanRecord>> {
        Ok(self.read(id).await?.and_then(live))
    }

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

    async fn claim(&self, id: &str, reclaim: bool) -> anyhow::Result<Option<ScanRecord>> {
        let Some(mut current) = self.read(id).await? else {
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
        current.status = ScanStatus::Running;
        current.attempts += 1;
        let claimed = self
            .put_if(&current, "#status = :status AND #attempts = :attempts", values)
            .await?;
        Ok(claimed.then_some(current))
    }

    async fn finish(&self, record: ScanRecord) -> anyhow::Result<bool> {
        // Only the claim that took this attempt may finish it.
        let values = Item::from([
            (":running".to_owned(), s("RUNNING")),
            (":attempts".to_owned(), n(record.attempts)),
        ]);
        self.put_if(&record, "#status = :running AND #attempts = :attempts", values)
            .await
    }

    async fn unfinished(&self) -> anyhow::Result<Vec<ScanRecord>> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#status IN (:pending, :running)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("PENDING"))
            .expression_attribute_values(":running", AttributeValue::S("RUNNING".into()))
            .consistent_read(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("DynamoDB Scan {}", self.table))?;
            for item in page.items() {
                out.push(record(item)?);
            }
        }
        Ok(out)
    }
}
