//! `pawql migrate`: brings a stage's labels to the layout this code reads
//! (`resolvers/src/domain/chunks.rs` for the shard items and slots, `items.rs` for the rows
//! spread over partition keys). It converts two older layouts:
//!
//! - **Before write shards**: one `chunkInfoTable` item per label under the bare label,
//!   listing every chunk; rows under the bare label with their `chunkNumber`. Step 1 reads the
//!   old chunk info (for its `revision`) and every row; step 2 files the rows, in id order,
//!   through the same plans as new uploads, and puts the slot items and the rows (at their
//!   spread keys) with `PutItem`, 16 at a time; step 3 is one transaction writing the shard
//!   items and deleting the old chunk info on condition that its `revision` is what step 1
//!   read. An old Lambda's write in between makes the switch fail, and the label is converted
//!   again from step 1; copies of rows it deleted meanwhile (a spread row whose bare row is
//!   gone) are deleted before the switch, so nothing comes back and no new weight is lost.
//! - **Rows not spread**: shard items and slots as today, rows under the bare label. First the
//!   label is **closed**: one transaction moves its shard items into one item under the bare
//!   label (`frozenShards`), conditional on each shard's `revision`. With no shard items and an
//!   item under the bare label, every writer (the previous release's and this one) refuses the
//!   label with `MIGRATION_PENDING`, so the rows cannot change while they are copied to their
//!   spread keys. Then one transaction puts the shard items back, marked with
//!   `rowPartitions`, and deletes the frozen item. Slots do not move: they already hold copies
//!   of the rows.
//!
//! After either switch the rows under the bare label are deleted; nothing reads them any more.
//! A label an old Lambda wrote to meanwhile is converted again, up to [`ATTEMPTS`] times in
//! one run, then left for the next run with an error saying so. Slot items an earlier attempt
//! wrote and the new filing does not have are deleted before the switch.
//!
//! Idempotent and resumable: a converted label is skipped (after deleting any bare rows a cut
//! off run left); a run cut off before its switch left the label waiting, and the next run
//! starts again from what is stored (a frozen label stays frozen and is copied again). Until
//! its switch, a label's picks and writes answer `MIGRATION_PENDING`: the window is the time
//! from deploying to the end of `pawql migrate` (see docs/migrating.md, which also says why
//! the previous release must be gone before the command runs).

use std::time::Instant;

use std::collections::BTreeSet;

use anyhow::Context;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use futures_util::StreamExt;
use resolvers::domain::chunks::{refile, shard_key, ShardInfo, Write, WriteShards, MAX_WRITE_SHARDS};
use resolvers::domain::label::{Label, LabelSet};

use super::batch_get::batch_get_consistent;
use super::contention::{self, Budget};
use super::items::{self, n, Item};
use super::resources::Resources;

/// Item writes in flight at once while a label is filed.
const PUTS_IN_FLIGHT: usize = 16;

/// Conversions of one label in one run, when old Lambdas keep writing to it.
pub const ATTEMPTS: u32 = 3;

/// The label changed while it was converted (an old deployment still writing): converted
/// again from the start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ChangedMeanwhile(String);

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
        let mut attempt = 1;
        let mut slots_written = BTreeSet::new();
        let images = loop {
            match migrate_label(client, resources, labels, label, shards, &mut slots_written).await {
                Err(e) if e.downcast_ref::<ChangedMeanwhile>().is_some() && attempt < ATTEMPTS => {
                    tracing::warn!(%label, attempt, error = %e, "the label changed while it was converted; converting it again");
                    attempt += 1;
                }
                done => {
                    break done.map_err(|e| match e.downcast_ref::<ChangedMeanwhile>() {
                        Some(_) => e.context(format!(
                            "the label kept changing while it was converted ({ATTEMPTS} attempts; is an old deployment still writing?): run pawql migrate again"
                        )),
                        None => e,
                    })
                    .with_context(|| format!("migrating label {label}"))?;
                }
            }
        };
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
    slots_written: &mut BTreeSet<String>,
) -> anyhow::Result<Option<usize>> {
    let images = match layout_of(client, resources, label).await? {
        Layout::Empty => None,
        Layout::Current => {
            delete_unspread_rows(client, resources, labels, label).await?;
            None
        }
        Layout::BeforeWriteShards { revision } => {
            Some(convert_unsharded(client, resources, labels, label, shards, revision, slots_written).await?)
        }
        Layout::Unspread(shard_items) => {
            freeze(client, resources, label, &shard_items).await?;
            Some(spread_frozen(client, resources, labels, label, shard_items).await?)
        }
        Layout::Frozen(shard_items) => Some(spread_frozen(client, resources, labels, label, shard_items).await?),
    };
    if images.is_some() {
        delete_unspread_rows(client, resources, labels, label).await?;
    }
    Ok(images)
}

/// Which layout a label is stored in.
enum Layout {
    /// Nothing stored.
    Empty,
    /// This code's: every shard item marked `rowPartitions`.
    Current,
    /// One chunk-info item under the bare label, at this `revision`.
    BeforeWriteShards { revision: AttributeValue },
    /// Shard items (as read) without `rowPartitions`: rows under the bare label.
    Unspread(Vec<Item>),
    /// Closed by [`freeze`]: the shard items kept in the bare label's item.
    Frozen(Vec<Item>),
}

const FROZEN_SHARDS: &str = "frozenShards";

async fn layout_of(client: &Client, resources: &Resources, label: &Label) -> anyhow::Result<Layout> {
    let bare = client
        .get_item()
        .table_name(&resources.chunk_info_table)
        .set_key(Some(items::info_key(label.as_str())))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| contention::classify(e, "DynamoDB GetItem (old chunk info)"))?
        .item;
    if let Some(bare) = bare {
        if let Some(frozen) = bare.get(FROZEN_SHARDS) {
            let frozen = frozen
                .as_l()
                .map_err(|_| anyhow::anyhow!("{FROZEN_SHARDS} is not a list"))?
                .iter()
                .map(|item| {
                    item.as_m()
                        .cloned()
                        .map_err(|_| anyhow::anyhow!("a frozen shard is not a map"))
                })
                .collect::<anyhow::Result<Vec<Item>>>()?;
            return Ok(Layout::Frozen(frozen));
        }
        let revision = bare
            .get("revision")
            .context("the old chunk info has no revision")?
            .clone();
        return Ok(Layout::BeforeWriteShards { revision });
    }
    // Every shard a label can have, whatever the shard count was when it was written.
    let keys = (0..MAX_WRITE_SHARDS)
        .map(|shard| items::info_key(&shard_key(label.as_str(), shard)))
        .collect();
    let shard_items = batch_get_consistent(client, &resources.chunk_info_table, keys).await?;
    Ok(if shard_items.is_empty() {
        Layout::Empty
    } else if shard_items
        .iter()
        .all(|item| item.contains_key(items::ROW_PARTITIONS_ATTRIBUTE))
    {
        Layout::Current
    } else {
        Layout::Unspread(shard_items)
    })
}

/// Converts a label from the layout before write shards (module header, first kind).
async fn convert_unsharded(
    client: &Client,
    resources: &Resources,
    labels: &LabelSet,
    label: &Label,
    shards: WriteShards,
    revision: AttributeValue,
    slots_written: &mut BTreeSet<String>,
) -> anyhow::Result<usize> {
    let mut rows = query_rows(client, &resources.image_chunks_table, label.as_str(), |item| {
        items::image_record(&without_place(item), labels)
    })
    .await?;
    rows.sort_by_key(|row| row.id.storage_key());
    let count = rows.len();

    let mut infos: Vec<ShardInfo> = (0..shards.count())
        .map(|s| ShardInfo::empty(label.as_str(), s))
        .collect();
    let mut puts: Vec<Change> = Vec::with_capacity(2 * count);
    for row in rows {
        let shard = shards.shard_of(&row.id) as usize;
        let plan = refile(infos[shard].clone(), None, Some(row), None)?;
        for write in &plan.writes {
            match write {
                Write::PutRow(record) => puts.push(Change::Put {
                    table: resources.image_chunks_table.clone(),
                    item: items::image_item(record),
                }),
                Write::PutSlot(slot, record) => puts.push(Change::Put {
                    table: resources.chunk_info_table.clone(),
                    item: items::slot_item(label.as_str(), *slot, record),
                }),
                Write::PutShard(_) => {}
                other => anyhow::bail!("filing a row planned {other:?}"),
            }
        }
        infos[shard] = plan.info;
    }
    // Spread rows of images no longer in the label: an earlier attempt (of this run or a run
    // cut off) copied them before an old Lambda deleted the image. Nothing else writes spread
    // rows of a label in this layout: this code refuses it until the switch.
    let filed: BTreeSet<String> = puts
        .iter()
        .filter_map(|change| match change {
            Change::Put { table, item } if table == &resources.image_chunks_table => item_key_text(item, "s3key"),
            _ => None,
        })
        .collect();
    let mut strays: Vec<Change> = spread_rows(client, resources, label)
        .await?
        .into_iter()
        .filter(|key| !filed.contains(&key.s3key))
        .map(|key| Change::Delete {
            table: resources.image_chunks_table.clone(),
            key: key.item,
        })
        .collect();
    // Every slot this run puts, before it puts them: an attempt that stops half-way may have
    // written any of them.
    let slots_now: BTreeSet<String> = puts
        .iter()
        .filter_map(|change| match change {
            Change::Put { table, item } if table == &resources.chunk_info_table => item_key_text(item, "label"),
            _ => None,
        })
        .collect();
    slots_written.extend(slots_now.iter().cloned());
    strays.extend(slots_written.difference(&slots_now).map(|stray| Change::Delete {
        table: resources.chunk_info_table.clone(),
        key: items::info_key(stray),
    }));
    apply_all(client, strays).await?;
    apply_all(client, puts).await?;

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
        .expression_attribute_values(":revision", revision)
        .build()?;
    switch.push(TransactWriteItem::builder().delete(delete).build());
    send_switch(client, switch).await?;
    Ok(count)
}

/// Closes a label whose rows are not spread (module header, second kind): its shard items
/// move, in one transaction conditional on each one's `revision`, into the bare label's item.
async fn freeze(client: &Client, resources: &Resources, label: &Label, shard_items: &[Item]) -> anyhow::Result<()> {
    let mut close: Vec<TransactWriteItem> = Vec::with_capacity(shard_items.len() + 1);
    for item in shard_items {
        let key = item.get("label").context("a shard item without its key")?.clone();
        let revision = item
            .get("revision")
            .context("a shard item without its revision")?
            .clone();
        let delete = Delete::builder()
            .table_name(&resources.chunk_info_table)
            .key("label", key)
            .condition_expression("#revision = :revision")
            .expression_attribute_names("#revision", "revision")
            .expression_attribute_values(":revision", revision)
            .build()?;
        close.push(TransactWriteItem::builder().delete(delete).build());
    }
    let frozen = Put::builder()
        .table_name(&resources.chunk_info_table)
        .item("label", items::s(label.as_str()))
        .item(
            FROZEN_SHARDS,
            AttributeValue::L(shard_items.iter().cloned().map(AttributeValue::M).collect()),
        )
        .condition_expression("attribute_not_exists(#label)")
        .expression_attribute_names("#label", "label")
        .build()?;
    close.push(TransactWriteItem::builder().put(frozen).build());
    send_switch(client, close).await
}

/// Copies a frozen label's rows to their spread keys and reopens it (module header).
async fn spread_frozen(
    client: &Client,
    resources: &Resources,
    labels: &LabelSet,
    label: &Label,
    shard_items: Vec<Item>,
) -> anyhow::Result<usize> {
    let rows = query_rows(client, &resources.image_chunks_table, label.as_str(), |item| {
        Ok(items::image_item(&items::image_record(item, labels)?))
    })
    .await?;
    let count = rows.len();
    let copies = rows
        .into_iter()
        .map(|item| Change::Put {
            table: resources.image_chunks_table.clone(),
            item,
        })
        .collect();
    apply_all(client, copies).await?;

    let mut reopen: Vec<TransactWriteItem> = Vec::with_capacity(shard_items.len() + 1);
    for mut item in shard_items {
        item.insert(items::ROW_PARTITIONS_ATTRIBUTE.to_owned(), n(items::ROW_PARTITIONS));
        let put = Put::builder()
            .table_name(&resources.chunk_info_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#label)")
            .expression_attribute_names("#label", "label")
            .build()?;
        reopen.push(TransactWriteItem::builder().put(put).build());
    }
    let delete = Delete::builder()
        .table_name(&resources.chunk_info_table)
        .set_key(Some(items::info_key(label.as_str())))
        .condition_expression("attribute_exists(#frozen)")
        .expression_attribute_names("#frozen", FROZEN_SHARDS)
        .build()?;
    reopen.push(TransactWriteItem::builder().delete(delete).build());
    send_switch(client, reopen).await?;
    Ok(count)
}

/// A switch (or a freeze): refused on a condition or in conflict with a writer, the label
/// may have changed since it was read, so it is converted again.
async fn send_switch(client: &Client, writes: Vec<TransactWriteItem>) -> anyhow::Result<()> {
    contention::transact_exactly_once(client, writes, "DynamoDB TransactWriteItems (switch)")
        .await
        .map_err(|e| {
            if contention::is_transient(&e) {
                ChangedMeanwhile(format!("the switch was refused: {e:#}")).into()
            } else {
                e
            }
        })
}

/// Deletes the rows under the bare label of a converted label: copies nothing reads.
async fn delete_unspread_rows(
    client: &Client,
    resources: &Resources,
    labels: &LabelSet,
    label: &Label,
) -> anyhow::Result<()> {
    let keys = query_rows(client, &resources.image_chunks_table, label.as_str(), |item| {
        let s3key = item_key_text(item, "s3key").context("a row without its s3key")?;
        // Decoded only to be sure it is an image row of this label.
        resolvers::domain::image::ImageId::from_storage_key(&s3key, labels)?;
        Ok(items::Item::from([
            ("label".to_owned(), items::s(label.as_str())),
            ("s3key".to_owned(), items::s(s3key)),
        ]))
    })
    .await?;
    let deletes = keys
        .into_iter()
        .map(|key| Change::Delete {
            table: resources.image_chunks_table.clone(),
            key,
        })
        .collect();
    apply_all(client, deletes).await
}

/// The key of a spread row found in a label's partitions.
struct SpreadRow {
    s3key: String,
    item: Item,
}

/// The keys of every spread row of `label`, one `Query` per partition.
async fn spread_rows(client: &Client, resources: &Resources, label: &Label) -> anyhow::Result<Vec<SpreadRow>> {
    let mut out = Vec::new();
    for partition in 0..items::ROW_PARTITIONS {
        let key = items::row_partition_key(label.as_str(), partition);
        out.extend(
            query_rows(client, &resources.image_chunks_table, &key, |item| {
                let s3key = item_key_text(item, "s3key").context("a row without its s3key")?;
                Ok(SpreadRow {
                    item: Item::from([
                        ("label".to_owned(), items::s(key.clone())),
                        ("s3key".to_owned(), items::s(s3key.clone())),
                    ]),
                    s3key,
                })
            })
            .await?,
        );
    }
    Ok(out)
}

fn item_key_text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
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

/// One item write of a conversion: a copy put in place, or a stray or leftover removed.
enum Change {
    Put { table: String, item: Item },
    Delete { table: String, key: Item },
}

/// Applies the changes, [`PUTS_IN_FLIGHT`] at a time. `PutItem` and `DeleteItem` rather
/// than `BatchWriteItem`: they are actions the API's role already grants (the command runs
/// with what the Lambda may do, plus reading a label's rows), and a throttled write is retried
/// like any other. Each is idempotent, so a resend after a lost answer is harmless.
async fn apply_all(client: &Client, changes: Vec<Change>) -> anyhow::Result<()> {
    // After a failure no new write is sent, but those in flight are waited for (a dropped
    // request may still land): none may arrive after the next attempt has begun.
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut results = futures_util::stream::iter(changes)
        .map(|change| {
            let failed = &failed;
            async move {
                if failed.load(std::sync::atomic::Ordering::SeqCst) {
                    return Ok(());
                }
                apply_one(client, change).await
            }
        })
        .buffer_unordered(PUTS_IN_FLIGHT);
    let mut first_error = None;
    while let Some(result) = results.next().await {
        if let Err(e) = result {
            failed.store(true, std::sync::atomic::Ordering::SeqCst);
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn apply_one(client: &Client, change: Change) -> anyhow::Result<()> {
    let mut budget = Budget::start();
    loop {
        let (sent, what) = match &change {
            Change::Put { table, item } => (
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item.clone()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| contention::classify(e, &format!("DynamoDB PutItem {table}"))),
                format!("PutItem {table}"),
            ),
            Change::Delete { table, key } => (
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key.clone()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| contention::classify(e, &format!("DynamoDB DeleteItem {table}"))),
                format!("DeleteItem {table}"),
            ),
        };
        match sent {
            Ok(()) => return Ok(()),
            Err(err) if contention::is_transient(&err) => budget.pause(&what).await?,
            Err(err) => return Err(err),
        }
    }
}
