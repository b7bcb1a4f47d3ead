//! `pawql migrate`: converts a stage's labels from the chunk layout before write shards (one
//! `chunkInfoTable` item per label, listing every chunk; `LabelChunkIndex`) to write shards and
//! slots (`resolvers/src/domain/chunks.rs`).
//!
//! Per label, in three steps:
//! 1. read the old chunk info (for its `revision`) and every row of the label;
//! 2. file the rows, in id order, through the same plans as new uploads: their slot items and
//!    the rows with their place go in with `PutItem`, 16 at a time (the label is not switched yet,
//!    so nothing reads them);
//! 3. one transaction writes the shard items and deletes the old chunk info, on condition that
//!    its `revision` is what step 1 read: the switch is atomic, and a label written meanwhile
//!    (an old Lambda still running) is refused and converted again by the next run.
//!
//! Idempotent and resumable: a converted label has no old chunk info and is skipped; a run cut
//! off before step 3 left the label unswitched, and the next run recomputes the same filing
//! (same rows, same order) and overwrites what the first wrote. Until its switch, a label's
//! picks and writes answer `MIGRATION_PENDING` (the deployed code finds no shard items): the
//! window is the time from deploying to the end of `pawql migrate` (see README, Deployment).

use std::time::Instant;

use anyhow::Context;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use futures_util::StreamExt;
use resolvers::domain::chunks::{refile, ShardInfo, Write, WriteShards};
use resolvers::domain::label::{Label, LabelSet};

use super::contention::{self, Budget};
use super::items::{self, n, Item};
use super::resources::Resources;

/// Item writes in flight at once while a label is filed.
const PUTS_IN_FLIGHT: usize = 16;

/// What `pawql migrate` did to one label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub label: String,
    /// Images re-filed (held ones included); `None` when the label needed nothing.
    pub images: Option<usize>,
    pub millis: u128,
}

/// Converts every label of `labels` still in the old layout.
pub async fn migrate(
    client: &Client,
    resources: &Resources,
    labels: &LabelSet,
    shards: WriteShards,
) -> anyhow::Result<Vec<Migrated>> {
    let mut report = Vec::new();
    for label in labels.iter() {
        let started = Instant::now();
        let images = migrate_label(client, resources, labels, label, shards)
            .await
            .with_context(|| format!("migrating label {label}"))?;
        report.push(Migrated {
            label: label.to_string(),
            images,
            millis: started.elapsed().as_millis(),
        });
    }
    Ok(report)
}

async fn migrate_label(
    client: &Client,
    resources: &Resources,
    labels: &LabelSet,
    label: &Label,
    shards: WriteShards,
) -> anyhow::Result<Option<usize>> {
    let legacy = client
        .get_item()
        .table_name(&resources.chunk_info_table)
        .set_key(Some(items::info_key(label.as_str())))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| contention::classify(e, "DynamoDB GetItem (old chunk info)"))?
        .item;
    let Some(legacy) = legacy else {
        return Ok(None);
    };
    let revision = legacy
        .get("revision")
        .and_then(|v| v.as_n().ok())
        .context("the old chunk info has no revision")?
        .clone();

    let mut rows = query_rows(client, &resources.image_chunks_table, label.as_str(), |item| {
        items::image_record(&without_place(item), labels)
    })
    .await?;
    rows.sort_by_key(|row| row.id.storage_key());
    let count = rows.len();

    let mut infos: Vec<ShardInfo> = (0..shards.count())
        .map(|s| ShardInfo::empty(label.as_str(), s))
        .collect();
    let mut puts: Vec<(String, Item)> = Vec::with_capacity(2 * count);
    for row in rows {
        let shard = shards.shard_of(&row.id) as usize;
        let plan = refile(infos[shard].clone(), None, Some(row), None)?;
        for write in &plan.writes {
            match write {
                Write::PutRow(record) => puts.push((resources.image_chunks_table.clone(), items::image_item(record))),
                Write::PutSlot(slot, record) => puts.push((
                    resources.chunk_info_table.clone(),
                    items::slot_item(label.as_str(), *slot, record),
                )),
                Write::PutShard(_) => {}
                other => anyhow::bail!("filing a row planned {other:?}"),
            }
        }
        infos[shard] = plan.info;
    }
    put_all(client, puts).await?;

    let mut switch: Vec<TransactWriteItem> = Vec::with_capacity(infos.len() + 1);
    for info in &infos {
        let put = Put::builder()
            .table_name(&resources.chunk_info_table)
            .set_item(Some(items::shard_item(info, 1)))
            .build()?;
        switch.push(TransactWriteItem::builder().put(put).build());
    }
    let delete = Delete::builder()
        .table_name(&resources.chunk_info_table)
        .set_key(Some(items::info_key(label.as_str())))
        .condition_expression("#revision = :revision")
        .expression_attribute_names("#revision", "revision")
        .expression_attribute_values(":revision", n(revision))
        .build()?;
    switch.push(TransactWriteItem::builder().delete(delete).build());
    contention::transact_exactly_once(client, switch, "DynamoDB TransactWriteItems (switch)")
        .await
        .map_err(|e| {
            e.context("the label changed while it was converted (is an old deployment still writing?): run pawql migrate again")
        })?;
    Ok(Some(count))
}

/// A row as the old layout wrote it: without the place this layout gives it (`shard`,
/// `chunkNumber`, `slot`), so it reads as an image not yet filed. (A run cut off half-way left
/// some rows with a place already; it is recomputed all the same.)
pub(super) fn without_place(item: &Item) -> Item {
    let mut item = item.clone();
    item.remove("chunkNumber");
    item.remove("slot");
    item.insert("shard".to_owned(), n(0));
    item
}

/// Every row of a label, strongly consistent, page by page.
pub(super) async fn query_rows<T>(
    client: &Client,
    table: &str,
    label: &str,
    decode: impl Fn(&Item) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("#label = :label")
            .expression_attribute_names("#label", "label")
            .expression_attribute_values(":label", items::s(label))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| contention::classify(e, &format!("DynamoDB Query {table}")))?;
        for item in page.items() {
            out.push(decode(item)?);
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(out),
        }
    }
}

/// Puts items (table, item), [`PUTS_IN_FLIGHT`] at a time. `PutItem` rather than
/// `BatchWriteItem`: it is an action the stage's role already grants (the command runs with
/// what the Lambda may do, no more), and a throttled put is retried like any other write.
async fn put_all(client: &Client, puts: Vec<(String, Item)>) -> anyhow::Result<()> {
    let mut results = futures_util::stream::iter(puts)
        .map(|(table, item)| put_one(client, table, item))
        .buffer_unordered(PUTS_IN_FLIGHT);
    while let Some(result) = results.next().await {
        result?;
    }
    Ok(())
}

async fn put_one(client: &Client, table: String, item: Item) -> anyhow::Result<()> {
    let mut budget = Budget::start();
    loop {
        let sent = client
            .put_item()
            .table_name(&table)
            .set_item(Some(item.clone()))
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(()),
            Err(e) => {
                let err = contention::classify(e, &format!("DynamoDB PutItem {table}"));
                if !contention::is_transient(&err) {
                    return Err(err);
                }
                budget.pause(&format!("PutItem {table}")).await?;
            }
        }
    }
}
