//! `chunkInfoTable` (chunk info per write shard, and the slots) and `imageChunksTable` as redb
//! tables, in the layout of `resolvers/src/domain/chunks.rs`.
//!
//! Each change is one redb write transaction (serialisable, fsync on commit) applying one
//! plan of [`refile`]: the row, the slots and the shard's chunk info change together or not at
//! all. Reads use snapshot read transactions, so a pick never sees half a change. What a pick
//! reads (chunk info, slots) is kept decoded in an exact in-memory cache (`read_cache.rs`)
//! that every write invalidates for its label.
//!
//! A store written before write shards (chunk info under the bare label, `LabelChunkIndex`)
//! is converted when opened, in one transaction (`convert_legacy_layout`).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use resolvers::domain::chunks::{
    last_slot_to_read, refile, shard_key, LabelChunks, ShardInfo, Slot, Write, WriteShards,
};
use resolvers::domain::image::{ImageId, ImageRecord, NewImage};
use resolvers::domain::label::{Label, LabelSet};
use resolvers::ports::{ChunkTables, Inserted, RowChange};

use super::read_cache::ReadCache;
use super::rows;
use tracing::instrument;

/// `cat#0` → a shard's chunk info (JSON, seed field names). Before write shards: `cat` →
/// the label's one chunk info.
const CHUNK_INFO: TableDefinition<&str, &[u8]> = TableDefinition::new("chunkInfoTable");
/// `cat#0#57#12` → the s3key of the image in that slot (the row holds the rest).
const CHUNK_SLOTS: TableDefinition<&str, &str> = TableDefinition::new("chunkSlots");
/// (label, s3key) → image row (JSON, seed field names).
const IMAGE_CHUNKS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("imageChunksTable");
/// The index of the layout before write shards, dropped when a store is converted.
const LEGACY_LABEL_CHUNK_INDEX: TableDefinition<(&str, u32, &str), ()> = TableDefinition::new("LabelChunkIndex");

/// The chunk tables in one redb file.
pub struct RedbChunkTables {
    db: Arc<Database>,
    labels: LabelSet,
    cache: ReadCache,
}

impl RedbChunkTables {
    /// Opens or creates the database file and its tables, converting a store written before
    /// write shards (its images spread over `shards`).
    pub fn open(path: &Path, labels: LabelSet, shards: WriteShards) -> anyhow::Result<RedbChunkTables> {
        let db = Database::create(path).with_context(|| format!("opening {}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(CHUNK_INFO)?;
        txn.open_table(CHUNK_SLOTS)?;
        txn.open_table(IMAGE_CHUNKS)?;
        convert_legacy_layout(&txn, &labels, shards)?;
        txn.commit()?;
        Ok(RedbChunkTables {
            db: Arc::new(db),
            labels,
            cache: ReadCache::default(),
        })
    }

    /// The database, for the other tables kept in the same file (scans).
    pub fn database(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }

    /// Runs blocking redb work off the async runtime.
    async fn blocking<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database, &LabelSet) -> anyhow::Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let labels = self.labels.clone();
        tokio::task::spawn_blocking(move || work(&db, &labels))
            .await
            .context("redb task panicked")?
    }

    /// Changes one existing image in one transaction: `change` says what the row becomes
    /// (`None`: removed). Answers the row as it was and as it is.
    async fn change(
        &self,
        id: &ImageId,
        change: impl FnOnce(&ImageRecord) -> Option<ImageRecord> + Send + 'static,
    ) -> anyhow::Result<Option<(ImageRecord, Option<ImageRecord>)>> {
        let id = id.clone();
        let label = id.label.clone();
        let outcome = self
            .blocking(move |db, labels| {
                let txn = db.begin_write()?;
                let Some(old) = read_row(&txn, &id, labels)? else {
                    return Ok(None);
                };
                let info = read_shard(&txn, label_of(&id), old.shard)?
                    .with_context(|| format!("{id} is filed in shard {} of no chunk info", old.shard))?;
                let new = change(&old);
                let pooled = new.as_ref().map_or(0, ImageRecord::pooled_nanos);
                let last = match last_slot_to_read(&info, &old, pooled) {
                    Some(slot) => Some(
                        read_slot(&txn, label_of(&id), slot, labels)?
                            .with_context(|| format!("slot {slot:?} of {id}'s chunk is empty"))?,
                    ),
                    None => None,
                };
                let plan = refile(info, Some(&old), new, last)?;
                apply(&txn, label_of(&id), &plan.writes)?;
                txn.commit()?;
                Ok(Some((old, plan.record)))
            })
            .await;
        // After the commit, error or not (a failure may come after it): see read_cache.rs.
        self.cache.invalidate(label.as_str());
        outcome
    }
}

fn label_of(id: &ImageId) -> &str {
    id.label.as_str()
}

fn read_shard(txn: &WriteTransaction, label: &str, shard: u32) -> anyhow::Result<Option<ShardInfo>> {
    let table = txn.open_table(CHUNK_INFO)?;
    let info = table
        .get(shard_key(label, shard).as_str())?
        .map(|v| serde_json::from_slice(v.value()))
        .transpose()?;
    Ok(info)
}

fn read_row(txn: &WriteTransaction, id: &ImageId, labels: &LabelSet) -> anyhow::Result<Option<ImageRecord>> {
    find_row(
        &txn.open_table(IMAGE_CHUNKS)?,
        id.label.as_str(),
        &id.storage_key(),
        labels,
    )
}

fn read_slot(
    txn: &WriteTransaction,
    label: &str,
    slot: Slot,
    labels: &LabelSet,
) -> anyhow::Result<Option<ImageRecord>> {
    find_slot(
        &txn.open_table(CHUNK_SLOTS)?,
        &txn.open_table(IMAGE_CHUNKS)?,
        label,
        slot,
        labels,
    )
}

/// One image row from either kind of transaction's `imageChunksTable`.
fn find_row(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    label: &str,
    s3key: &str,
    labels: &LabelSet,
) -> anyhow::Result<Option<ImageRecord>> {
    let row = table
        .get((label, s3key))?
        .map(|v| rows::decode(v.value(), labels))
        .transpose()?;
    Ok(row)
}

/// The image in a slot, through the slot's pointer to its row.
fn find_slot(
    slots: &impl ReadableTable<&'static str, &'static str>,
    rows_table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    label: &str,
    slot: Slot,
    labels: &LabelSet,
) -> anyhow::Result<Option<ImageRecord>> {
    let Some(s3key) = slots.get(slot.key(label).as_str())? else {
        return Ok(None);
    };
    let row = find_row(rows_table, label, s3key.value(), labels)?;
    Ok(Some(row.with_context(|| {
        format!("slot {} points at no row", slot.key(label))
    })?))
}

/// Applies one plan's writes inside the transaction.
fn apply(txn: &WriteTransaction, label: &str, writes: &[Write]) -> anyhow::Result<()> {
    let mut rows_table = txn.open_table(IMAGE_CHUNKS)?;
    let mut slots = txn.open_table(CHUNK_SLOTS)?;
    let mut infos = txn.open_table(CHUNK_INFO)?;
    for write in writes {
        match write {
            Write::PutRow(record) => {
                rows_table.insert(
                    (label, record.id.storage_key().as_str()),
                    rows::encode(record).as_slice(),
                )?;
            }
            Write::DeleteRow(id) => {
                rows_table.remove((label, id.storage_key().as_str()))?;
            }
            Write::PutSlot(slot, record) => {
                slots.insert(slot.key(label).as_str(), record.id.storage_key().as_str())?;
            }
            Write::DeleteSlot(slot) => {
                slots.remove(slot.key(label).as_str())?;
            }
            Write::PutShard(info) => {
                infos.insert(
                    shard_key(label, info.shard).as_str(),
                    serde_json::to_vec(info)?.as_slice(),
                )?;
            }
        }
    }
    Ok(())
}

/// Re-files every label still in the layout before write shards (chunk info under the bare
/// label): its rows go to their shards and slots through the same plans as new uploads, in
/// id order, and the old chunk info and index go. Idempotent: a converted store has neither.
fn convert_legacy_layout(txn: &WriteTransaction, labels: &LabelSet, shards: WriteShards) -> anyhow::Result<()> {
    let legacy: Vec<String> = {
        let infos = txn.open_table(CHUNK_INFO)?;
        let mut found = Vec::new();
        for entry in infos.iter()? {
            let key = entry?.0.value().to_owned();
            if !key.contains('#') {
                found.push(key);
            }
        }
        found
    };
    for label in &legacy {
        let rows: Vec<ImageRecord> = {
            let table = txn.open_table(IMAGE_CHUNKS)?;
            let mut out = Vec::new();
            for entry in table.range((label.as_str(), "")..)? {
                let (key, value) = entry?;
                if key.value().0 != label {
                    break;
                }
                out.push(rows::decode(value.value(), labels)?);
            }
            out
        };
        let mut infos: Vec<ShardInfo> = (0..shards.count()).map(|s| ShardInfo::empty(label, s)).collect();
        for row in rows {
            let shard = shards.shard_of(&row.id) as usize;
            let plan = refile(infos[shard].clone(), None, Some(row), None)?;
            apply(txn, label, &plan.writes)?;
            infos[shard] = plan.info;
        }
        txn.open_table(CHUNK_INFO)?.remove(label.as_str())?;
        tracing::info!(%label, "converted to write shards");
    }
    if !legacy.is_empty() {
        txn.delete_table(LEGACY_LABEL_CHUNK_INDEX)?;
    }
    Ok(())
}

#[async_trait]
impl ChunkTables for RedbChunkTables {
    /// Every `cat#…` item: the shards a label has, whatever the setting is now.
    #[instrument(level = "debug", skip_all, fields(%label))]
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<LabelChunks>> {
        if let Some(cached) = self.cache.info(label.as_str()) {
            return Ok((*cached).clone());
        }
        let ticket = self.cache.ticket(label.as_str());
        let key = label.clone();
        let info: Option<LabelChunks> = self
            .blocking(move |db, _| {
                let txn = db.begin_read()?;
                let table = txn.open_table(CHUNK_INFO)?;
                let (from, to) = (format!("{key}#"), format!("{key}$"));
                let mut shards = Vec::new();
                for entry in table.range(from.as_str()..to.as_str())? {
                    shards.push(serde_json::from_slice::<ShardInfo>(entry?.1.value())?);
                }
                shards.sort_by_key(|info| info.shard);
                Ok((!shards.is_empty()).then_some(LabelChunks { shards }))
            })
            .await?;
        self.cache.store_info(label.as_str(), ticket, Arc::new(info.clone()));
        Ok(info)
    }

    #[instrument(level = "debug", skip_all, fields(%label))]
    async fn slots(&self, label: &Label, slots: &[Slot]) -> anyhow::Result<Vec<Option<ImageRecord>>> {
        if let Some(cached) = self.cache.slots(label.as_str(), slots) {
            return Ok(cached);
        }
        let ticket = self.cache.ticket(label.as_str());
        let (key, wanted) = (label.clone(), slots.to_vec());
        let found = self
            .blocking(move |db, labels| {
                let txn = db.begin_read()?;
                let (slot_table, rows_table) = (txn.open_table(CHUNK_SLOTS)?, txn.open_table(IMAGE_CHUNKS)?);
                wanted
                    .iter()
                    .map(|&slot| find_slot(&slot_table, &rows_table, key.as_str(), slot, labels))
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .await?;
        self.cache
            .store_slots(label.as_str(), ticket, slots.iter().copied().zip(found.iter().cloned()));
        Ok(found)
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        let id = id.clone();
        self.blocking(move |db, labels| {
            let txn = db.begin_read()?;
            find_row(
                &txn.open_table(IMAGE_CHUNKS)?,
                id.label.as_str(),
                &id.storage_key(),
                labels,
            )
        })
        .await
    }

    #[instrument(level = "debug", skip_all)]
    async fn insert_image(&self, image: NewImage, shards: WriteShards) -> anyhow::Result<Inserted> {
        let written = image.id.label.clone();
        let outcome = self
            .blocking(move |db, labels| {
                let txn = db.begin_write()?;
                if let Some(existing) = read_row(&txn, &image.id, labels)? {
                    return Ok(Inserted::Existing(existing));
                }
                let label = image.id.label.clone();
                let shard = shards.shard_of(&image.id);
                let info =
                    read_shard(&txn, label.as_str(), shard)?.unwrap_or_else(|| ShardInfo::empty(label.as_str(), shard));
                let plan = refile(info, None, Some(image.into_record()), None)?;
                apply(&txn, label.as_str(), &plan.writes)?;
                txn.commit()?;
                Ok(Inserted::New(plan.record.expect("an insert files a row")))
            })
            .await;
        self.cache.invalidate(written.as_str());
        outcome
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        Ok(self.change(id, |_| None).await?.map(|(old, _)| old))
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn update_image(&self, id: &ImageId, change: RowChange) -> anyhow::Result<Option<ImageRecord>> {
        let changed = self.change(id, move |old| Some(change(old))).await?;
        Ok(changed.and_then(|(_, new)| new))
    }

    #[instrument(level = "debug", skip_all, fields(%label))]
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        let label = label.clone();
        self.blocking(move |db, labels| {
            let txn = db.begin_read()?;
            let table = txn.open_table(IMAGE_CHUNKS)?;
            let label = label.as_str();
            let mut out = Vec::new();
            for entry in table.range((label, "")..)? {
                let (key, value) = entry?;
                if key.value().0 != label {
                    break;
                }
                out.push(rows::decode(value.value(), labels)?);
            }
            Ok(out)
        })
        .await
    }
}
