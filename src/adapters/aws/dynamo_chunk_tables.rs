//! `chunkInfoTable` and `imageChunksTable` on DynamoDB, in the layout of
//! `resolvers/src/domain/chunks.rs`: per label, one chunk-info item per write shard (`cat#0`)
//! and one item per slot (`cat#0#57#12`) in `chunkInfoTable`; one row per image in
//! `imageChunksTable`. No item grows with the catalogue (`capacity.rs` proves the bounds).
//!
//! Every change is one `TransactWriteItems` applying one plan of [`refile`]: the row
//! (`attribute_not_exists`, or "still the row I read"), the slots it moves, and the shard's
//! chunk info (`revision` unchanged, then bumped). Two writers racing on a shard cannot both
//! win; the loser re-reads and tries again (optimistic concurrency), so counts, sums and slots
//! never drift. Writers of different shards never meet.
//!
//! Losing a race, a transaction conflict and throttling all mean "nothing happened": the
//! operation is tried again inside a time budget (`contention.rs`), never turned into a 500
//! while time is left.
//!
//! A random pick costs two requests, both strongly consistent `BatchGetItem`s: the label's
//! shard items, then the drawn slots (their items are copies of the rows, so no row is read).
//! A slot is kept with probability above 1/2 (the bound is proved in the header of
//! `resolvers/src/domain/chunks.rs`), so a third request is needed for fewer than a quarter of
//! the draws. `labels` reads every label's shard items in one `BatchGetItem`.

use resolvers::deadline;
use std::collections::HashMap;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Get, Put, TransactGetItem, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use resolvers::domain::chunks::{
    last_slot_to_read, refile, shard_key, ChunkError, LabelChunks, ShardInfo, Slot, Write, WriteShards,
};
use resolvers::domain::image::{ImageId, ImageRecord, NewImage};
use resolvers::domain::label::{Label, LabelSet};
use resolvers::ports::{ChunkTables, Inserted, MigrationPending, RowChange};

use super::batch_get::batch_get_consistent;
use super::contention::{self, Budget};
use super::items::{self, n, Item, VersionedShard};
use tracing::instrument;

/// The DynamoDB implementation of [`ChunkTables`].
pub struct DynamoChunkTables {
    client: Client,
    chunk_info_table: String,
    image_chunks_table: String,
    labels: LabelSet,
    /// The write shards every label has: picks read all of them.
    shards: WriteShards,
    /// Attempts retried because another writer got there first, a transaction conflicted, or
    /// DynamoDB throttled (see [`Self::lost_races`]).
    lost_races: std::sync::atomic::AtomicU64,
}

/// What the main row's write must find: nothing (an insert) or the row exactly as read.
pub(super) enum RowGuard<'a> {
    Absent,
    Unchanged(&'a ImageRecord),
}

impl DynamoChunkTables {
    pub fn new(
        client: Client,
        chunk_info_table: impl Into<String>,
        image_chunks_table: impl Into<String>,
        labels: LabelSet,
        shards: WriteShards,
    ) -> DynamoChunkTables {
        DynamoChunkTables {
            client,
            chunk_info_table: chunk_info_table.into(),
            image_chunks_table: image_chunks_table.into(),
            labels,
            shards,
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
        let get = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send();
        let what = format!("DynamoDB GetItem {table}");
        let output = deadline::bounded(&what, async { get.await.map_err(|e| contention::classify(e, &what)) }).await?;
        Ok(output.item)
    }

    /// A shard's chunk info; an empty one at revision 0 when the item does not exist yet,
    /// unless the label is still in the layout before write shards.
    async fn read_shard(&self, label: &str, shard: u32) -> anyhow::Result<VersionedShard> {
        match self
            .get_item(&self.chunk_info_table, items::info_key(&shard_key(label, shard)))
            .await?
        {
            Some(item) => items::versioned_shard(&item),
            None => {
                self.refuse_if_waiting(label).await?;
                Ok(VersionedShard {
                    info: ShardInfo::empty(label, shard),
                    revision: 0,
                })
            }
        }
    }

    /// A label with an item under its bare name is in a layout `pawql migrate` converts (before
    /// write shards, or closed while its rows are spread). Asked only where a label has no
    /// shard items (a new label), so it costs nothing on a label in use.
    async fn refuse_if_legacy(&self, label: &str) -> anyhow::Result<()> {
        if self
            .get_item(&self.chunk_info_table, items::info_key(label))
            .await?
            .is_some()
        {
            return Err(MigrationPending(label.to_owned()).into());
        }
        Ok(())
    }

    /// Before a shard's first item is written: the label must not be waiting for `pawql
    /// migrate`, neither under its bare name nor through another shard's item without
    /// `rowPartitions` (rows not spread yet). One `BatchGetItem`, once per shard in a label's
    /// life.
    async fn refuse_if_waiting(&self, label: &str) -> anyhow::Result<()> {
        let mut keys = vec![items::info_key(label)];
        keys.extend((0..self.shards.count()).map(|s| items::info_key(&shard_key(label, s))));
        for item in batch_get_consistent(&self.client, &self.chunk_info_table, keys).await? {
            if !item.contains_key("shard") {
                return Err(MigrationPending(label.to_owned()).into());
            }
            items::versioned_shard(&item)?;
        }
        Ok(())
    }

    async fn read_row(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        let item = self.get_item(&self.image_chunks_table, items::image_key(id)).await?;
        item.as_ref()
            .map(|item| items::image_record(item, &self.labels))
            .transpose()
    }

    /// The row and the chunk info of the shard it hashes to, in one `TransactGetItems`: a
    /// snapshot of both, so a concurrent writer cannot slip between the two reads. (A row
    /// filed under another shard count is in another shard: that one is read after it.)
    async fn read_row_and_shard(&self, id: &ImageId) -> anyhow::Result<Option<(ImageRecord, VersionedShard)>> {
        let get = |table: &str, key: Item| -> anyhow::Result<TransactGetItem> {
            Ok(TransactGetItem::builder()
                .get(Get::builder().table_name(table).set_key(Some(key)).build()?)
                .build())
        };
        let label = id.label.as_str();
        let hashed = self.shards.shard_of(id);
        let output = self
            .client
            .transact_get_items()
            .transact_items(get(&self.image_chunks_table, items::image_key(id))?)
            .transact_items(get(&self.chunk_info_table, items::info_key(&shard_key(label, hashed)))?)
            .send();
        let what = "DynamoDB TransactGetItems";
        let output = deadline::bounded(what, async { output.await.map_err(|e| contention::classify(e, what)) }).await?;
        let responses = output.responses();
        let item = |i: usize| responses.get(i).and_then(|r| r.item()).filter(|item| !item.is_empty());
        let Some(row) = item(0) else {
            // No row where this layout keeps it: none, unless the label still waits for
            // `pawql migrate` (its shard item unmarked, or none and an item under its name).
            match item(1) {
                Some(info) => {
                    items::versioned_shard(info)?;
                }
                None => self.refuse_if_legacy(label).await?,
            }
            return Ok(None);
        };
        let record = items::image_record(row, &self.labels)?;
        let shard = match item(1) {
            Some(info) if record.shard == hashed => items::versioned_shard(info)?,
            _ => self.read_shard(label, record.shard).await?,
        };
        anyhow::ensure!(
            shard.revision > 0,
            "{id} is filed in shard {} of no chunk info",
            record.shard
        );
        Ok(Some((record, shard)))
    }

    /// The image in one slot, strongly consistent.
    async fn read_slot(&self, label: &str, slot: Slot) -> anyhow::Result<Option<ImageRecord>> {
        let item = self
            .get_item(&self.chunk_info_table, items::info_key(&slot.key(label)))
            .await?;
        item.as_ref()
            .map(|item| items::slot_record(item, &self.labels))
            .transpose()
    }

    /// One transaction, applied once even when an answer is lost
    /// ([`contention::transact_exactly_once`]); a lost race or contention comes back as
    /// [`contention::Transient`].
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> anyhow::Result<()> {
        contention::transact_exactly_once(&self.client, writes, "DynamoDB TransactWriteItems").await
    }

    /// Changes one existing image: `change` says what its row becomes (`None`: removed).
    /// Answers the row as it was and as it is.
    async fn change(
        &self,
        id: &ImageId,
        change: impl Fn(&ImageRecord) -> Option<ImageRecord>,
    ) -> anyhow::Result<Option<(ImageRecord, Option<ImageRecord>)>> {
        let change = &change;
        let label = id.label.as_str();
        self.retrying(&format!("change {id}"), |_| async move {
            let Some((old, read)) = self.read_row_and_shard(id).await? else {
                return Ok(Some(None));
            };
            let new = change(&old);
            let pooled = new.as_ref().map_or(0, ImageRecord::pooled_nanos);
            let last = match last_slot_to_read(&read.info, &old, pooled) {
                Some(slot) => self.read_slot(label, slot).await?,
                None => None,
            };
            let plan = match refile(read.info, Some(&old), new, last) {
                Ok(plan) => plan,
                // The last slot moved between the reads: a concurrent writer, so read again.
                Err(ChunkError::StaleLastSlot(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let writes = plan_transaction(
                &self.chunk_info_table,
                &self.image_chunks_table,
                label,
                &plan.writes,
                read.revision,
                id,
                RowGuard::Unchanged(&old),
            )?;
            self.transact(writes).await?;
            Ok(Some(Some((old, plan.record))))
        })
        .await
    }

    /// The shard items of `labels`, in one strongly consistent `BatchGetItem` (100 keys a
    /// request); a label with none is `None`, or `MIGRATION_PENDING` if it is still in the
    /// layout before write shards. With `with_old_keys`, the labels' old chunk-info keys are
    /// asked in the same request (for many labels at once, where one by one would cost a
    /// request each); without, only a label found empty is looked for (a pick's path).
    async fn read_labels(&self, labels: &[Label], with_old_keys: bool) -> anyhow::Result<Vec<Option<LabelChunks>>> {
        let mut keys: Vec<Item> = labels
            .iter()
            .flat_map(|label| (0..self.shards.count()).map(move |s| items::info_key(&shard_key(label.as_str(), s))))
            .collect();
        if with_old_keys {
            keys.extend(labels.iter().map(|label| items::info_key(label.as_str())));
        }
        let mut found: HashMap<String, Vec<ShardInfo>> = HashMap::new();
        let mut old_layout = std::collections::HashSet::new();
        for item in batch_get_consistent(&self.client, &self.chunk_info_table, keys).await? {
            if item.contains_key("shard") {
                let info = items::versioned_shard(&item)?.info;
                found.entry(info.label.clone()).or_default().push(info);
            } else if let Some(key) = item.get("label").and_then(|v| v.as_s().ok()) {
                old_layout.insert(key.clone());
            }
        }
        let mut out = Vec::with_capacity(labels.len());
        for label in labels {
            match found.remove(label.as_str()) {
                Some(mut shards) => {
                    shards.sort_by_key(|info| info.shard);
                    out.push(Some(LabelChunks { shards }));
                }
                None if old_layout.contains(label.as_str()) => {
                    return Err(MigrationPending(label.to_string()).into());
                }
                None => {
                    if !with_old_keys {
                        self.refuse_if_legacy(label.as_str()).await?;
                    }
                    out.push(None);
                }
            }
        }
        Ok(out)
    }
}

/// A plan's writes as one transaction's items: the real ones, which the capacity model
/// (`capacity.rs`) also counts and sizes.
pub(super) fn plan_transaction(
    chunk_info_table: &str,
    image_chunks_table: &str,
    label: &str,
    writes: &[Write],
    read_revision: u64,
    main: &ImageId,
    guard: RowGuard<'_>,
) -> anyhow::Result<Vec<TransactWriteItem>> {
    let mut out = Vec::with_capacity(writes.len());
    for write in writes {
        let item = match write {
            Write::PutRow(record) => {
                let put = Put::builder()
                    .table_name(image_chunks_table)
                    .set_item(Some(items::image_item(record)));
                let put = if &record.id == main {
                    match &guard {
                        RowGuard::Absent => put
                            .condition_expression("attribute_not_exists(#s3key)")
                            .expression_attribute_names("#s3key", "s3key"),
                        RowGuard::Unchanged(old) => {
                            let (condition, names, values) = row_unchanged(old);
                            put.condition_expression(condition)
                                .set_expression_attribute_names(Some(names))
                                .set_expression_attribute_values(Some(values))
                        }
                    }
                } else {
                    // A row moved to another slot: the shard's revision guards it.
                    put.condition_expression("attribute_exists(#s3key)")
                        .expression_attribute_names("#s3key", "s3key")
                };
                TransactWriteItem::builder().put(put.build()?).build()
            }
            Write::DeleteRow(id) => {
                let RowGuard::Unchanged(old) = &guard else {
                    anyhow::bail!("a delete of {id} without the row read");
                };
                let (condition, names, values) = row_unchanged(old);
                let delete = Delete::builder()
                    .table_name(image_chunks_table)
                    .set_key(Some(items::image_key(id)))
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values(Some(values));
                TransactWriteItem::builder().delete(delete.build()?).build()
            }
            Write::PutSlot(slot, record) => {
                let put = Put::builder()
                    .table_name(chunk_info_table)
                    .set_item(Some(items::slot_item(label, *slot, record)));
                TransactWriteItem::builder().put(put.build()?).build()
            }
            Write::DeleteSlot(slot) => {
                let delete = Delete::builder()
                    .table_name(chunk_info_table)
                    .set_key(Some(items::info_key(&slot.key(label))));
                TransactWriteItem::builder().delete(delete.build()?).build()
            }
            Write::PutShard(info) => {
                let put = Put::builder()
                    .table_name(chunk_info_table)
                    .set_item(Some(items::shard_item(info, read_revision + 1)));
                let put = if read_revision == 0 {
                    put.condition_expression("attribute_not_exists(#label)")
                        .expression_attribute_names("#label", "label")
                } else {
                    put.condition_expression("#revision = :revision")
                        .expression_attribute_names("#revision", "revision")
                        .expression_attribute_values(":revision", n(read_revision))
                };
                TransactWriteItem::builder().put(put.build()?).build()
            }
        };
        out.push(item);
    }
    Ok(out)
}

/// A condition that the row is still exactly the one read: same place, weight and hold.
fn row_unchanged(record: &ImageRecord) -> (String, HashMap<String, String>, Item) {
    let mut names = HashMap::from([
        ("#shard".to_owned(), "shard".to_owned()),
        ("#weight".to_owned(), "weight".to_owned()),
        ("#held".to_owned(), items::HELD_REASON.to_owned()),
        ("#slot".to_owned(), "slot".to_owned()),
    ]);
    let mut values = Item::from([
        (":shard".to_owned(), n(record.shard)),
        (":weight".to_owned(), n(record.weight.to_decimal_string())),
    ]);
    let mut conditions = vec!["#shard = :shard".to_owned(), "#weight = :weight".to_owned()];
    match &record.hold {
        Some(reason) => {
            values.insert(":held".to_owned(), items::s(reason.to_string()));
            conditions.push("#held = :held".to_owned());
        }
        None => conditions.push("attribute_not_exists(#held)".to_owned()),
    }
    match record.slot {
        Some(slot) => {
            names.insert("#chunk".to_owned(), "chunkNumber".to_owned());
            values.insert(":chunk".to_owned(), n(slot.chunk));
            values.insert(":slot".to_owned(), n(slot.index));
            conditions.push("#chunk = :chunk AND #slot = :slot".to_owned());
        }
        None => conditions.push("attribute_not_exists(#slot)".to_owned()),
    }
    (conditions.join(" AND "), names, values)
}

#[async_trait]
impl ChunkTables for DynamoChunkTables {
    #[instrument(level = "debug", skip_all, fields(%label))]
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<LabelChunks>> {
        Ok(self
            .read_labels(std::slice::from_ref(label), false)
            .await?
            .pop()
            .flatten())
    }

    #[instrument(level = "debug", skip_all)]
    async fn chunk_infos(&self, labels: &[Label]) -> anyhow::Result<Vec<Option<LabelChunks>>> {
        self.read_labels(labels, true).await
    }

    /// The slots' items in one strongly consistent `BatchGetItem` (a slot drawn twice is
    /// asked once: DynamoDB refuses repeated keys).
    #[instrument(level = "debug", skip_all, fields(%label))]
    async fn slots(&self, label: &Label, slots: &[Slot]) -> anyhow::Result<Vec<Option<ImageRecord>>> {
        let mut keys: Vec<String> = slots.iter().map(|slot| slot.key(label.as_str())).collect();
        keys.sort();
        keys.dedup();
        let keys = keys.iter().map(|key| items::info_key(key)).collect();
        let mut found: HashMap<String, ImageRecord> = HashMap::new();
        for item in batch_get_consistent(&self.client, &self.chunk_info_table, keys).await? {
            let key = item
                .get("label")
                .and_then(|v| v.as_s().ok())
                .context("a slot item without its key")?
                .clone();
            found.insert(key, items::slot_record(&item, &self.labels)?);
        }
        Ok(slots
            .iter()
            .map(|slot| found.get(&slot.key(label.as_str())).cloned())
            .collect())
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.retrying(&format!("read {id}"), |_| async { Ok(Some(self.read_row(id).await?)) })
            .await
    }

    #[instrument(level = "debug", skip_all)]
    async fn insert_image(&self, image: NewImage, shards: WriteShards) -> anyhow::Result<Inserted> {
        let image = &image;
        let label = image.id.label.as_str();
        let shard = shards.shard_of(&image.id);
        self.retrying(&format!("insert {}", image.id), |attempt| async move {
            // The row's write is conditional on its absence, so the first attempt needs no read
            // (the catalog has just looked); after a lost race the row may be why.
            if attempt > 0 {
                if let Some(existing) = self.read_row(&image.id).await? {
                    return Ok(Some(Inserted::Existing(existing)));
                }
            }
            let read = self.read_shard(label, shard).await?;
            let plan = refile(read.info, None, Some(image.clone().into_record()), None)?;
            let writes = plan_transaction(
                &self.chunk_info_table,
                &self.image_chunks_table,
                label,
                &plan.writes,
                read.revision,
                &image.id,
                RowGuard::Absent,
            )?;
            self.transact(writes).await?;
            Ok(Some(Inserted::New(plan.record.expect("an insert files a row"))))
        })
        .await
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        Ok(self.change(id, |_| None).await?.map(|(old, _)| old))
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn update_image(&self, id: &ImageId, change: RowChange) -> anyhow::Result<Option<ImageRecord>> {
        let changed = self.change(id, |old| Some(change(old))).await?;
        Ok(changed.and_then(|(_, new)| new))
    }

    /// Every row as stored, from the label's row partitions and from under the bare label
    /// (where a label awaiting `pawql migrate` keeps them; a row in both is the spread one). A
    /// row of the layout before write shards reads as not yet filed (shard 0, no slot), so
    /// maintenance sees the label whole while it awaits the migration. One `Query` per
    /// partition and one more.
    #[instrument(level = "debug", skip_all, fields(%label))]
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        let decode = |item: &Item| {
            if item.contains_key("shard") {
                items::image_record(item, &self.labels)
            } else {
                items::image_record(&super::migrate::without_place(item), &self.labels)
            }
        };
        let mut found: std::collections::BTreeMap<String, ImageRecord> = std::collections::BTreeMap::new();
        for row in super::migrate::query_rows(&self.client, &self.image_chunks_table, label.as_str(), decode).await? {
            found.insert(row.id.storage_key(), row);
        }
        for partition in 0..items::ROW_PARTITIONS {
            let key = items::row_partition_key(label.as_str(), partition);
            for row in super::migrate::query_rows(&self.client, &self.image_chunks_table, &key, decode).await? {
                found.insert(row.id.storage_key(), row);
            }
        }
        Ok(found.into_values().collect())
    }
}
