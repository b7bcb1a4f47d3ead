//! `chunkInfoTable` and `imageChunksTable` (with its GSI `LabelChunkIndex`) on DynamoDB.
//!
//! Every bookkeeping change is one `TransactWriteItems` of two conditional writes: the image
//! row (`attribute_not_exists`, or "still the row I read") and the chunk info (`revision`
//! unchanged, then bumped). Two writers racing on a label cannot both win; the loser re-reads
//! and tries again (optimistic concurrency), so the counts and weight sums never drift and
//! no write is a blind read-modify-write.
//!
//! A random pick costs exactly two requests: `GetItem` on the chunk info, then one `Query` of
//! `LabelChunkIndex` for the chosen chunk (a chunk is at most `chunkMax` small rows, one page).
//! `labels` reads every label's chunk info in one `BatchGetItem`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Get, Put, TransactGetItem, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use resolvers::domain::chunks::{ChunkInfo, ChunkSizing};
use resolvers::domain::image::{ImageId, ImageRecord, NewImage};
use resolvers::domain::label::{Label, LabelSet};
use resolvers::domain::weight::Weight;
use resolvers::ports::{ChunkTables, Inserted};

use super::batch_get::batch_get_consistent;
use super::items::{self, n, Item, VersionedInfo};

/// The name of the GSI on `imageChunksTable` (partition `label`, sort `chunkNumber`).
pub const LABEL_CHUNK_INDEX: &str = "LabelChunkIndex";

/// How often a write retries after losing a race before giving up with an internal error.
/// High on purpose: a burst of uploads to one label all contend on one chunk info item.
pub(super) const MAX_ATTEMPTS: u32 = 100;

/// The DynamoDB implementation of [`ChunkTables`].
pub struct DynamoChunkTables {
    client: Client,
    chunk_info_table: String,
    image_chunks_table: String,
    labels: LabelSet,
    /// Transactions retried because another writer got there first (see [`Self::lost_races`]).
    lost_races: std::sync::atomic::AtomicU64,
}

/// What a transaction ended with.
enum Outcome {
    Committed,
    /// A condition failed (someone else wrote first) or DynamoDB reported a transaction conflict.
    LostRace,
}

impl DynamoChunkTables {
    pub fn new(
        client: Client,
        chunk_info_table: impl Into<String>,
        image_chunks_table: impl Into<String>,
        labels: LabelSet,
    ) -> DynamoChunkTables {
        DynamoChunkTables {
            client,
            chunk_info_table: chunk_info_table.into(),
            image_chunks_table: image_chunks_table.into(),
            labels,
            lost_races: Default::default(),
        }
    }

    /// How many transactions this process retried after losing a race (a condition failed,
    /// or DynamoDB cancelled for a conflict): evidence that writers really contended.
    pub fn lost_races(&self) -> u64 {
        self.lost_races.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn lost_race(&self, attempt: u32) {
        self.lost_races.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        back_off(attempt).await
    }

    /// One item by key, strongly consistent (writes are decided on what it says).
    async fn get_item(&self, table: &str, key: Item) -> anyhow::Result<Option<Item>> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("DynamoDB GetItem {table}"))?;
        Ok(output.item)
    }

    async fn read_info(&self, label: &str) -> anyhow::Result<Option<VersionedInfo>> {
        let item = self.get_item(&self.chunk_info_table, items::info_key(label)).await?;
        item.as_ref().map(items::versioned_info).transpose()
    }

    async fn read_row(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        let item = self.get_item(&self.image_chunks_table, items::image_key(id)).await?;
        item.as_ref()
            .map(|item| items::image_record(item, &self.labels))
            .transpose()
    }

    /// The row and its label's chunk info, read for a change in one `TransactGetItems`: a
    /// snapshot of both, so a concurrent writer cannot slip between the two reads.
    async fn read_row_and_info(&self, id: &ImageId) -> anyhow::Result<Option<(ImageRecord, VersionedInfo)>> {
        let get = |table: &str, key: Item| -> anyhow::Result<TransactGetItem> {
            Ok(TransactGetItem::builder()
                .get(Get::builder().table_name(table).set_key(Some(key)).build()?)
                .build())
        };
        let output = self
            .client
            .transact_get_items()
            .transact_items(get(&self.image_chunks_table, items::image_key(id))?)
            .transact_items(get(&self.chunk_info_table, items::info_key(id.label.as_str()))?)
            .send()
            .await
            .context("DynamoDB TransactGetItems")?;
        let responses = output.responses();
        let item = |i: usize| responses.get(i).and_then(|r| r.item()).filter(|item| !item.is_empty());
        let Some(row) = item(0) else {
            return Ok(None);
        };
        let record = items::image_record(row, &self.labels)?;
        let info = item(1).with_context(|| format!("label {} has rows but no chunk info", id.label))?;
        Ok(Some((record, items::versioned_info(info)?)))
    }

    /// Writes the new chunk info if its revision is still `read.revision` (absent when 0).
    fn put_info(&self, info: &ChunkInfo, read_revision: u64) -> anyhow::Result<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.chunk_info_table)
            .set_item(Some(items::info_item(info, read_revision + 1)));
        let put = if read_revision == 0 {
            put.condition_expression("attribute_not_exists(#label)")
                .expression_attribute_names("#label", "label")
        } else {
            put.condition_expression("#revision = :revision")
                .expression_attribute_names("#revision", "revision")
                .expression_attribute_values(":revision", n(read_revision))
        };
        Ok(TransactWriteItem::builder().put(put.build()?).build())
    }

    /// A condition that the row is still exactly the one read: same chunk, same weight.
    fn row_unchanged(record: &ImageRecord) -> (String, HashMap<String, String>, Item) {
        let names = HashMap::from([
            ("#chunk".to_owned(), "chunkNumber".to_owned()),
            ("#weight".to_owned(), "weight".to_owned()),
            ("#held".to_owned(), items::HELD_REASON.to_owned()),
        ]);
        let mut values = Item::from([
            (":chunk".to_owned(), n(record.chunk_number)),
            (":weight".to_owned(), n(record.weight.to_decimal_string())),
        ]);
        let held = match &record.hold {
            Some(reason) => {
                values.insert(":held".to_owned(), items::s(reason.as_str()));
                "#held = :held"
            }
            None => "attribute_not_exists(#held)",
        };
        (
            format!("#chunk = :chunk AND #weight = :weight AND {held}"),
            names,
            values,
        )
    }

    /// Changes one row with `change` and its chunk's weight sum by the change in its pooled
    /// weight: one transaction of the whole new row (conditional on the row as read) and the
    /// chunk info (conditional on its revision).
    async fn modify(&self, id: &ImageId, change: impl Fn(&mut ImageRecord)) -> anyhow::Result<Option<ImageRecord>> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some((record, read)) = self.read_row_and_info(id).await? else {
                return Ok(None);
            };
            let mut changed = record.clone();
            change(&mut changed);
            let mut info = read.info;
            info.change_weight(record.chunk_number, record.pooled_nanos(), changed.pooled_nanos())?;
            let (condition, names, values) = Self::row_unchanged(&record);
            let put_row = Put::builder()
                .table_name(&self.image_chunks_table)
                .set_item(Some(items::image_item(&changed)))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build()?;
            let writes = vec![
                TransactWriteItem::builder().put(put_row).build(),
                self.put_info(&info, read.revision)?,
            ];
            match self.transact(writes).await? {
                Outcome::Committed => return Ok(Some(changed)),
                Outcome::LostRace => self.lost_race(attempt).await,
            }
        }
        Err(gave_up("change", id))
    }

    async fn transact(&self, writes: Vec<TransactWriteItem>) -> anyhow::Result<Outcome> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
        {
            Ok(_) => Ok(Outcome::Committed),
            Err(SdkError::ServiceError(err)) if is_lost_race(err.err()) => Ok(Outcome::LostRace),
            Err(err) => Err(err).context("DynamoDB TransactWriteItems"),
        }
    }

    /// Paginated query; `index` picks the GSI.
    async fn query(&self, label: &str, chunk: Option<u32>, consistent: bool) -> anyhow::Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.image_chunks_table)
                .expression_attribute_names("#label", "label")
                .expression_attribute_values(":label", items::s(label))
                .set_exclusive_start_key(start.take());
            request = match chunk {
                Some(chunk) => request
                    .index_name(LABEL_CHUNK_INDEX)
                    .key_condition_expression("#label = :label AND #chunk = :chunk")
                    .expression_attribute_names("#chunk", "chunkNumber")
                    .expression_attribute_values(":chunk", n(chunk)),
                None => request
                    .key_condition_expression("#label = :label")
                    .consistent_read(consistent),
            };
            let page = request
                .send()
                .await
                .with_context(|| format!("DynamoDB Query {}", self.image_chunks_table))?;
            for item in page.items() {
                out.push(items::image_record(item, &self.labels)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(out),
            }
        }
    }
}

/// A cancelled transaction whose reasons are all condition failures or conflicts: retry.
fn is_lost_race(err: &TransactWriteItemsError) -> bool {
    match err {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
            cancelled.cancellation_reasons().iter().all(|reason| {
                matches!(
                    reason.code(),
                    None | Some("None") | Some("ConditionalCheckFailed") | Some("TransactionConflict")
                )
            })
        }
        TransactWriteItemsError::TransactionInProgressException(_) => true,
        _ => false,
    }
}

/// A short, growing, jittered pause between attempts so racing writers spread out.
pub(super) async fn back_off(attempt: u32) {
    let cap_ms = 5u64 << attempt.min(6);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(1 + nanos % cap_ms)).await;
}

fn gave_up(what: &str, id: &ImageId) -> anyhow::Error {
    anyhow::anyhow!("{what} {id}: lost the race for chunk info {MAX_ATTEMPTS} times")
}

#[async_trait]
impl ChunkTables for DynamoChunkTables {
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<ChunkInfo>> {
        Ok(self.read_info(label.as_str()).await?.map(|versioned| versioned.info))
    }

    /// All labels' chunk info in one strongly consistent `BatchGetItem` (≤ 100 keys a request;
    /// keys DynamoDB leaves unprocessed under load are asked again after a pause).
    async fn chunk_infos(&self, labels: &[Label]) -> anyhow::Result<Vec<Option<ChunkInfo>>> {
        let keys = labels.iter().map(|l| items::info_key(l.as_str())).collect();
        let mut found: HashMap<String, ChunkInfo> = HashMap::new();
        for item in batch_get_consistent(&self.client, &self.chunk_info_table, keys).await? {
            let info = items::versioned_info(&item)?.info;
            found.insert(info.label.clone(), info);
        }
        Ok(labels.iter().map(|l| found.remove(l.as_str())).collect())
    }

    async fn chunk_images(&self, label: &Label, chunk: u32) -> anyhow::Result<Arc<Vec<ImageRecord>>> {
        // GSI reads are eventually consistent: a pick may briefly miss a new image or see a
        // removed one, which the catalog tolerates (an empty chunk is re-drawn).
        Ok(Arc::new(self.query(label.as_str(), Some(chunk), false).await?))
    }

    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.read_row(id).await
    }

    async fn insert_image(&self, image: NewImage, sizing: ChunkSizing) -> anyhow::Result<Inserted> {
        for attempt in 0..MAX_ATTEMPTS {
            // The row's write is conditional on its absence, so the first attempt needs no read
            // (the catalog has just looked); after a lost race the row may be why.
            if attempt > 0 {
                if let Some(existing) = self.read_row(&image.id).await? {
                    return Ok(Inserted::Existing(existing));
                }
            }
            let label = &image.id.label;
            let read = self.read_info(label.as_str()).await?.unwrap_or_else(|| VersionedInfo {
                info: ChunkInfo::empty(label, sizing),
                revision: 0,
            });
            let mut info = read.info;
            let chunk = info.chunk_for_new_image();
            let record = image.clone().into_record(chunk);
            info.add_image(chunk, record.pooled_nanos())?;
            let put_row = Put::builder()
                .table_name(&self.image_chunks_table)
                .set_item(Some(items::image_item(&record)))
                .condition_expression("attribute_not_exists(#s3key)")
                .expression_attribute_names("#s3key", "s3key")
                .build()?;
            let writes = vec![
                TransactWriteItem::builder().put(put_row).build(),
                self.put_info(&info, read.revision)?,
            ];
            match self.transact(writes).await? {
                Outcome::Committed => return Ok(Inserted::New(record)),
                Outcome::LostRace => self.lost_race(attempt).await,
            }
        }
        Err(gave_up("insert", &image.id))
    }

    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        for attempt in 0..MAX_ATTEMPTS {
            let Some((record, read)) = self.read_row_and_info(id).await? else {
                return Ok(None);
            };
            let mut info = read.info;
            info.remove_image(record.chunk_number, record.pooled_nanos())?;
            let (condition, names, values) = Self::row_unchanged(&record);
            let delete_row = Delete::builder()
                .table_name(&self.image_chunks_table)
                .set_key(Some(items::image_key(id)))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build()?;
            let writes = vec![
                TransactWriteItem::builder().delete(delete_row).build(),
                self.put_info(&info, read.revision)?,
            ];
            match self.transact(writes).await? {
                Outcome::Committed => return Ok(Some(record)),
                Outcome::LostRace => self.lost_race(attempt).await,
            }
        }
        Err(gave_up("remove", id))
    }

    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>> {
        self.modify(id, |record| record.weight = weight).await
    }

    async fn set_hold(&self, id: &ImageId, hold: Option<String>) -> anyhow::Result<Option<ImageRecord>> {
        self.modify(id, |record| record.hold = hold.clone()).await
    }

    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        self.query(label.as_str(), None, true).await
    }
}
