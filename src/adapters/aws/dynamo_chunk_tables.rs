//! `chunkInfoTable` and `imageChunksTable` (with its GSI `LabelChunkIndex`) on DynamoDB.
//!
//! Every bookkeeping change is one `TransactWriteItems` of two conditional writes: the image
//! row (`attribute_not_exists`, or "still the row I read") and the chunk info (`revision`
//! unchanged, then bumped). Two writers racing on a label cannot both win; the loser re-reads
//! and tries again (optimistic concurrency), so the counts and weight sums never drift and
//! no write is a blind read-modify-write.
//!
//! Losing a race, a transaction conflict and throttling all mean "nothing happened": the
//! operation is tried again inside a time budget (`contention.rs`), never turned into a 500
//! while time is left.
//!
//! A random pick costs three requests: `GetItem` on the chunk info, one `Query` of
//! `LabelChunkIndex` for the chosen chunk (a chunk is at most `chunkMax` small rows, one page),
//! and one strongly consistent `BatchGetItem` of the drawn rows, because the index is
//! eventually consistent and may still list an image deleted or held a moment ago
//! ([`ChunkTables::current_rows`]). `labels` reads every label's chunk info in one `BatchGetItem`.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Get, Put, TransactGetItem, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use resolvers::domain::chunks::{ChunkInfo, ChunkSizing};
use resolvers::domain::image::{ImageId, ImageRecord, NewImage};
use resolvers::domain::label::{Label, LabelSet};
use resolvers::domain::weight::Weight;
use resolvers::ports::{ChunkTables, Inserted};

use super::batch_get::batch_get_consistent;
use super::contention::{self, Budget};
use super::items::{self, n, Item, VersionedInfo};

/// The name of the GSI on `imageChunksTable` (partition `label`, sort `chunkNumber`).
pub const LABEL_CHUNK_INDEX: &str = "LabelChunkIndex";

/// The DynamoDB implementation of [`ChunkTables`].
pub struct DynamoChunkTables {
    client: Client,
    chunk_info_table: String,
    image_chunks_table: String,
    labels: LabelSet,
    /// Attempts retried because another writer got there first, a transaction conflicted, or
    /// DynamoDB throttled (see [`Self::lost_races`]).
    lost_races: std::sync::atomic::AtomicU64,
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

    /// How many attempts this process retried after losing a race (a condition failed), a
    /// transaction conflict or throttling: evidence that writers really contended.
    pub fn lost_races(&self) -> u64 {
        self.lost_races.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `attempt` until it answers, retrying lost races (`Ok(None)`) and transient errors
    /// inside the contention budget.
    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> anyhow::Result<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
    {
        let mut budget = Budget::start();
        loop {
            match attempt(budget.attempts()).await {
                Ok(Some(done)) => return Ok(done),
                Ok(None) => {}
                Err(e) if contention::is_transient(&e) => tracing::debug!("{what}: {e}"),
                Err(e) => return Err(e),
            }
            self.lost_races.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            budget.pause(what).await?;
        }
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
            .map_err(|e| contention::classify(e, &format!("DynamoDB GetItem {table}")))?;
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
            .map_err(|e| contention::classify(e, "DynamoDB TransactGetItems"))?;
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
                values.insert(":held".to_owned(), items::s(reason.to_string()));
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
        let change = &change;
        self.retrying(&format!("change {id}"), |_| async move {
            let Some((record, read)) = self.read_row_and_info(id).await? else {
                return Ok(Some(None));
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
            self.transact(writes).await?;
            Ok(Some(Some(changed)))
        })
        .await
    }

    /// One transaction; a lost race or contention comes back as [`contention::Transient`].
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> anyhow::Result<()> {
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(|e| contention::classify(e, "DynamoDB TransactWriteItems"))?;
        Ok(())
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
                .map_err(|e| contention::classify(e, &format!("DynamoDB Query {}", self.image_chunks_table)))?;
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

#[async_trait]
impl ChunkTables for DynamoChunkTables {
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<ChunkInfo>> {
        let info = self
            .retrying(&format!("read chunk info of {label}"), |_| async {
                Ok(Some(self.read_info(label.as_str()).await?))
            })
            .await?;
        Ok(info.map(|versioned| versioned.info))
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
        // removed one; the catalog checks what it drew with `current_rows`.
        let rows = self
            .retrying(&format!("read chunk {chunk} of {label}"), |_| async {
                Ok(Some(self.query(label.as_str(), Some(chunk), false).await?))
            })
            .await?;
        Ok(Arc::new(rows))
    }

    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.retrying(&format!("read {id}"), |_| async { Ok(Some(self.read_row(id).await?)) })
            .await
    }

    fn chunk_reads_may_lag(&self) -> bool {
        true
    }

    /// The drawn rows read back in one strongly consistent `BatchGetItem`: the index they
    /// were drawn from may trail the table.
    async fn current_rows(&self, picked: &[ImageRecord]) -> anyhow::Result<Vec<Option<ImageRecord>>> {
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let mut distinct: Vec<&ImageId> = picked.iter().map(|r| &r.id).collect();
        distinct.sort();
        distinct.dedup();
        let keys = distinct.iter().map(|id| items::image_key(id)).collect();
        let mut now: HashMap<ImageId, ImageRecord> = HashMap::new();
        for item in batch_get_consistent(&self.client, &self.image_chunks_table, keys).await? {
            let record = items::image_record(&item, &self.labels)?;
            now.insert(record.id.clone(), record);
        }
        Ok(picked.iter().map(|r| now.get(&r.id).cloned()).collect())
    }

    async fn insert_image(&self, image: NewImage, sizing: ChunkSizing) -> anyhow::Result<Inserted> {
        let image = &image;
        self.retrying(&format!("insert {}", image.id), |attempt| async move {
            // The row's write is conditional on its absence, so the first attempt needs no read
            // (the catalog has just looked); after a lost race the row may be why.
            if attempt > 0 {
                if let Some(existing) = self.read_row(&image.id).await? {
                    return Ok(Some(Inserted::Existing(existing)));
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
            self.transact(writes).await?;
            Ok(Some(Inserted::New(record)))
        })
        .await
    }

    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.retrying(&format!("remove {id}"), |_| async move {
            let Some((record, read)) = self.read_row_and_info(id).await? else {
                return Ok(Some(None));
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
            self.transact(writes).await?;
            Ok(Some(Some(record)))
        })
        .await
    }

    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>> {
        self.modify(id, |record| record.weight = weight).await
    }

    async fn set_hold(
        &self,
        id: &ImageId,
        hold: Option<resolvers::domain::hold::Hold>,
    ) -> anyhow::Result<Option<ImageRecord>> {
        self.modify(id, |record| record.hold = hold.clone()).await
    }

    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        self.query(label.as_str(), None, true).await
    }
}
