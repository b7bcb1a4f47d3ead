//! `pawql migrate`: converts a stage's labels from the chunk layout before write shards (one
//! `chunkInfoTable` item per label, listing every chunk; `LabelChunkIndex`) to write shards and
//! slots (`resolvers/src/domain/chunks.rs`).
//!
//! Per label, in three steps:
//! 1. read the old chunk info (for its `revision`) and every row of the label;
//! 2. file the rows, in id order, through the same plans as new uploads: their slot items and
//!    the rows with their place go in with `PutItem`, 16 at a time (the label is not switched yet,
//!    so nothing reads them). Each row's put is conditional on the row being exactly as step 1
//!    read it, so an old Lambda's delete or re-weight in between is never overwritten: a
//!    deleted image does not come back, a new weight is not lost;
//! 3. one transaction writes the shard items and deletes the old chunk info, on condition that
//!    its `revision` is what step 1 read: the switch is atomic, and a label written meanwhile
//!    (an old Lambda still running) is refused.
//!
//! A label an old Lambda wrote to meanwhile (a row's condition or the switch's failed) is
//! converted again from step 1, up to [`ATTEMPTS`] times in one run, then left for the next
//! run with an error saying so. Slot items an earlier attempt wrote and the new filing does
//! not have (the label has fewer images now) are deleted before the switch, so the switched
//! label has exactly its slots.
//!
//! Idempotent and resumable: a converted label has no old chunk info and is skipped; a run cut
//! off before step 3 left the label unswitched, and the next run recomputes the same filing
//! (same rows, same order) and overwrites what the first wrote. Until its switch, a label's
//! picks and writes answer `MIGRATION_PENDING` (the deployed code finds no shard items): the
//! window is the time from deploying to the end of `pawql migrate` (see docs/migrating.md).

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
        let mut slots_written = std::collections::BTreeSet::new();
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
    slots_written: &mut std::collections::BTreeSet<String>,
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
        Ok((items::image_record(&without_place(item), labels)?, item.clone()))
    })
    .await?;
    rows.sort_by_key(|(row, _)| row.id.storage_key());
    let count = rows.len();
    let as_read: std::collections::HashMap<String, Item> = rows
        .iter()
        .map(|(row, item)| (row.id.storage_key(), item.clone()))
        .collect();
    let rows = rows.into_iter().map(|(row, _)| row);

    let mut infos: Vec<ShardInfo> = (0..shards.count())
        .map(|s| ShardInfo::empty(label.as_str(), s))
        .collect();
    let mut puts: Vec<Copy> = Vec::with_capacity(2 * count);
    for row in rows {
        let shard = shards.shard_of(&row.id) as usize;
        let plan = refile(infos[shard].clone(), None, Some(row), None)?;
        for write in &plan.writes {
            match write {
                Write::PutRow(record) => puts.push(Copy {
                    table: resources.image_chunks_table.clone(),
                    item: items::image_item(record),
                    unless_changed_from: as_read.get(&record.id.storage_key()).cloned(),
                }),
                Write::PutSlot(slot, record) => puts.push(Copy {
                    table: resources.chunk_info_table.clone(),
                    item: items::slot_item(label.as_str(), *slot, record),
                    unless_changed_from: None,
                }),
                Write::PutShard(_) => {}
                other => anyhow::bail!("filing a row planned {other:?}"),
            }
        }
        infos[shard] = plan.info;
    }
    // Every slot this run puts, before it puts them: an attempt that stops half-way may have
    // written any of them.
    let slots_now: std::collections::BTreeSet<String> = puts
        .iter()
        .filter(|copy| copy.table == resources.chunk_info_table)
        .filter_map(|copy| copy.item.get("label").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    slots_written.extend(slots_now.iter().cloned());
    put_all(client, puts).await?;
    for stray in slots_written.difference(&slots_now) {
        delete_stray_slot(client, &resources.chunk_info_table, stray).await?;
    }

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
            if contention::is_transient(&e) {
                // Refused on its revision, or in conflict with a writer: either way the label
                // may have changed since step 1.
                ChangedMeanwhile(format!("the switch was refused: {e:#}")).into()
            } else {
                e
            }
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

/// One item a conversion writes: a row with its place (conditional on the row as read) or a
/// slot (new, unconditional).
struct Copy {
    table: String,
    item: Item,
    /// The row as step 1 read it: the put happens only if it is still exactly that.
    unless_changed_from: Option<Item>,
}

/// A condition that an item still has exactly the attributes `read` (none more, none other):
/// every attribute equal, and, of those the code knows may appear, none added.
fn unchanged_from(read: &Item) -> (String, std::collections::HashMap<String, String>, Item) {
    let mut conditions = vec!["attribute_exists(#label)".to_owned()];
    let mut names = std::collections::HashMap::from([("#label".to_owned(), "label".to_owned())]);
    let mut values = Item::new();
    let mut attributes: Vec<&String> = read.keys().filter(|name| *name != "label").collect();
    attributes.sort();
    for (i, name) in attributes.into_iter().enumerate() {
        names.insert(format!("#a{i}"), name.clone());
        values.insert(format!(":v{i}"), read[name].clone());
        conditions.push(format!("#a{i} = :v{i}"));
    }
    for (i, optional) in [items::HELD_REASON, "slot", "chunkNumber", "placeholder", "variants"]
        .into_iter()
        .filter(|name| !read.contains_key(*name))
        .enumerate()
    {
        names.insert(format!("#o{i}"), optional.to_owned());
        conditions.push(format!("attribute_not_exists(#o{i})"));
    }
    (conditions.join(" AND "), names, values)
}

/// Puts the copies, [`PUTS_IN_FLIGHT`] at a time. `PutItem` rather than `BatchWriteItem`:
/// it is an action the API's role already grants (the command runs with what the Lambda may
/// do, plus reading a label's rows), a row's put can be conditional, and a throttled put is
/// retried like any other write.
async fn put_all(client: &Client, puts: Vec<Copy>) -> anyhow::Result<()> {
    // After a failure no new put is sent, but those in flight are waited for (a dropped
    // request may still land): none may arrive after the next attempt has begun.
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut results = futures_util::stream::iter(puts)
        .map(|copy| {
            let failed = &failed;
            async move {
                if failed.load(std::sync::atomic::Ordering::SeqCst) {
                    return Ok(());
                }
                put_one(client, copy).await
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

/// Deletes a slot item an earlier attempt of this run wrote and this one does not.
async fn delete_stray_slot(client: &Client, table: &str, key: &str) -> anyhow::Result<()> {
    let mut budget = Budget::start();
    loop {
        let sent = client
            .delete_item()
            .table_name(table)
            .set_key(Some(items::info_key(key)))
            .send()
            .await;
        match sent {
            Ok(_) => return Ok(()),
            Err(e) => {
                let err = contention::classify(e, &format!("DynamoDB DeleteItem {table} (stray slot)"));
                if !contention::is_transient(&err) {
                    return Err(err);
                }
                budget.pause(&format!("DeleteItem {table}")).await?;
            }
        }
    }
}

async fn put_one(client: &Client, copy: Copy) -> anyhow::Result<()> {
    let Copy {
        table,
        item,
        unless_changed_from,
    } = copy;
    let condition = unless_changed_from.as_ref().map(unchanged_from);
    let mut budget = Budget::start();
    loop {
        let mut put = client.put_item().table_name(&table).set_item(Some(item.clone()));
        if let Some((expression, names, values)) = &condition {
            put = put
                .condition_expression(expression)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values((!values.is_empty()).then(|| values.clone()))
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                );
        }
        match put.send().await {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // An earlier attempt of this very put applied and its answer was lost: the row
                // is already what is being put, which is not a change by anyone else.
                let found = e.as_service_error().and_then(|e| match e {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed) => {
                        failed.item().cloned()
                    }
                    _ => None,
                });
                if found.as_ref() == Some(&item) {
                    return Ok(());
                }
                let key = item
                    .get("s3key")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                return Err(ChangedMeanwhile(format!("row {key} was changed or removed after it was read")).into());
            }
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
