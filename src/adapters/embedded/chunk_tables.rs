//! `chunkInfoTable`, `imageChunksTable` and `LabelChunkIndex` as redb tables.
//!
//! Each write is one redb write transaction (serialisable, fsync on commit): the image row,
//! the index entry and the chunk info change together or not at all. Reads use snapshot
//! read transactions, so a pick never sees half a change. What a pick reads (chunk info, a
//! chunk's rows) is kept decoded in an exact in-memory cache (`read_cache.rs`) that every
//! write invalidates for its label.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use resolvers::domain::chunks::{ChunkInfo, ChunkSizing};
use resolvers::domain::image::{ImageId, ImageRecord, NewImage};
use resolvers::domain::label::{Label, LabelSet};
use resolvers::domain::weight::Weight;
use resolvers::ports::{ChunkTables, Inserted};

use super::read_cache::ReadCache;
use super::rows;

/// label → chunk info (JSON, seed field names).
const CHUNK_INFO: TableDefinition<&str, &[u8]> = TableDefinition::new("chunkInfoTable");
/// (label, s3key) → image row (JSON, seed field names).
const IMAGE_CHUNKS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("imageChunksTable");
/// (label, chunkNumber, s3key) → (): the GSI `LabelChunkIndex`, kept in the same transaction.
const LABEL_CHUNK_INDEX: TableDefinition<(&str, u32, &str), ()> = TableDefinition::new("LabelChunkIndex");

/// The chunk tables in one redb file.
pub struct RedbChunkTables {
    db: Arc<Database>,
    labels: LabelSet,
    cache: ReadCache,
}

impl RedbChunkTables {
    /// Opens or creates the database file and its tables.
    pub fn open(path: &Path, labels: LabelSet) -> anyhow::Result<RedbChunkTables> {
        let db = Database::create(path).with_context(|| format!("opening {}", path.display()))?;
        let txn = db.begin_write()?;
        txn.open_table(CHUNK_INFO)?;
        txn.open_table(IMAGE_CHUNKS)?;
        txn.open_table(LABEL_CHUNK_INDEX)?;
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
}

impl RedbChunkTables {
    /// One chunk's rows through `LabelChunkIndex`, in one read transaction.
    async fn read_chunk(&self, label: Label, chunk: u32) -> anyhow::Result<Vec<ImageRecord>> {
        self.blocking(move |db, labels| {
            let txn = db.begin_read()?;
            let index = txn.open_table(LABEL_CHUNK_INDEX)?;
            let rows_table = txn.open_table(IMAGE_CHUNKS)?;
            let label = label.as_str();
            let mut out = Vec::new();
            for entry in index.range((label, chunk, "")..(label, chunk + 1, ""))? {
                let (key, ()) = entry.map(|(k, v)| (k, v.value()))?;
                let (_, _, s3key) = key.value();
                let row = rows_table
                    .get((label, s3key))?
                    .ok_or_else(|| anyhow::anyhow!("index entry {s3key} has no row"))?;
                out.push(rows::decode(row.value(), labels)?);
            }
            Ok(out)
        })
        .await
    }

    /// Changes one row with `change` and its chunk's weight sum by the change in its pooled
    /// weight, in one transaction.
    async fn modify(
        &self,
        id: &ImageId,
        change: impl FnOnce(&mut ImageRecord) + Send + 'static,
    ) -> anyhow::Result<Option<ImageRecord>> {
        let id = id.clone();
        let label = id.label.clone();
        let outcome = self
            .blocking(move |db, labels| {
                let txn = db.begin_write()?;
                let Some((mut record, mut info)) = read_row_and_info(&txn, &id, labels)? else {
                    return Ok(None);
                };
                let before = record.pooled_nanos();
                change(&mut record);
                info.change_weight(record.chunk_number, before, record.pooled_nanos())?;
                write_row(&txn, &record)?;
                write_info(&txn, &info)?;
                txn.commit()?;
                Ok(Some(record))
            })
            .await;
        self.cache.invalidate(label.as_str());
        outcome
    }
}

fn read_info(txn: &WriteTransaction, label: &str) -> anyhow::Result<Option<ChunkInfo>> {
    let table = txn.open_table(CHUNK_INFO)?;
    let info = table
        .get(label)?
        .map(|v| serde_json::from_slice(v.value()))
        .transpose()?;
    Ok(info)
}

fn write_info(txn: &WriteTransaction, info: &ChunkInfo) -> anyhow::Result<()> {
    let mut table = txn.open_table(CHUNK_INFO)?;
    table.insert(info.label.as_str(), serde_json::to_vec(info)?.as_slice())?;
    Ok(())
}

fn read_row(txn: &WriteTransaction, id: &ImageId, labels: &LabelSet) -> anyhow::Result<Option<ImageRecord>> {
    find_row(&txn.open_table(IMAGE_CHUNKS)?, id, labels)
}

/// One image row from either kind of transaction's `imageChunksTable`.
fn find_row(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    id: &ImageId,
    labels: &LabelSet,
) -> anyhow::Result<Option<ImageRecord>> {
    let key = id.storage_key();
    let row = table
        .get((id.label.as_str(), key.as_str()))?
        .map(|v| rows::decode(v.value(), labels))
        .transpose()?;
    Ok(row)
}

/// An image row and its label's chunk info, inside a write transaction.
fn read_row_and_info(
    txn: &WriteTransaction,
    id: &ImageId,
    labels: &LabelSet,
) -> anyhow::Result<Option<(ImageRecord, ChunkInfo)>> {
    let Some(record) = read_row(txn, id, labels)? else {
        return Ok(None);
    };
    let info = read_info(txn, id.label.as_str())?
        .ok_or_else(|| anyhow::anyhow!("label {} has rows but no chunk info", id.label))?;
    Ok(Some((record, info)))
}

fn write_row(txn: &WriteTransaction, record: &ImageRecord) -> anyhow::Result<()> {
    let key = record.id.storage_key();
    let label = record.id.label.as_str();
    txn.open_table(IMAGE_CHUNKS)?
        .insert((label, key.as_str()), rows::encode(record).as_slice())?;
    txn.open_table(LABEL_CHUNK_INDEX)?
        .insert((label, record.chunk_number, key.as_str()), ())?;
    Ok(())
}

fn delete_row(txn: &WriteTransaction, record: &ImageRecord) -> anyhow::Result<()> {
    let key = record.id.storage_key();
    let label = record.id.label.as_str();
    txn.open_table(IMAGE_CHUNKS)?.remove((label, key.as_str()))?;
    txn.open_table(LABEL_CHUNK_INDEX)?
        .remove((label, record.chunk_number, key.as_str()))?;
    Ok(())
}

#[async_trait]
impl ChunkTables for RedbChunkTables {
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<ChunkInfo>> {
        if let Some(cached) = self.cache.info(label.as_str()) {
            return Ok((*cached).clone());
        }
        let ticket = self.cache.ticket(label.as_str());
        let key = label.clone();
        let info: Option<ChunkInfo> = self
            .blocking(move |db, _| {
                let txn = db.begin_read()?;
                let table = txn.open_table(CHUNK_INFO)?;
                let info = table
                    .get(key.as_str())?
                    .map(|v| serde_json::from_slice(v.value()))
                    .transpose()?;
                Ok(info)
            })
            .await?;
        self.cache.store_info(label.as_str(), ticket, Arc::new(info.clone()));
        Ok(info)
    }

    async fn chunk_images(&self, label: &Label, chunk: u32) -> anyhow::Result<Arc<Vec<ImageRecord>>> {
        if let Some(cached) = self.cache.chunk(label.as_str(), chunk) {
            return Ok(cached);
        }
        let ticket = self.cache.ticket(label.as_str());
        let rows = Arc::new(self.read_chunk(label.clone(), chunk).await?);
        self.cache.store_chunk(label.as_str(), chunk, ticket, Arc::clone(&rows));
        Ok(rows)
    }

    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        let id = id.clone();
        self.blocking(move |db, labels| {
            let txn = db.begin_read()?;
            find_row(&txn.open_table(IMAGE_CHUNKS)?, &id, labels)
        })
        .await
    }
    async fn insert_image(&self, image: NewImage, sizing: ChunkSizing) -> anyhow::Result<Inserted> {
        let written = image.id.label.clone();
        let outcome = self
            .blocking(move |db, labels| {
                let txn = db.begin_write()?;
                if let Some(existing) = read_row(&txn, &image.id, labels)? {
                    return Ok(Inserted::Existing(existing));
                }
                let label = image.id.label.clone();
                let mut info = read_info(&txn, label.as_str())?.unwrap_or_else(|| ChunkInfo::empty(&label, sizing));
                let chunk = info.chunk_for_new_image();
                let record = image.into_record(chunk);
                info.add_image(chunk, record.pooled_nanos())?;
                write_row(&txn, &record)?;
                write_info(&txn, &info)?;
                txn.commit()?;
                Ok(Inserted::New(record))
            })
            .await;
        // After the commit, error or not (a failure may come after it): see read_cache.rs.
        self.cache.invalidate(written.as_str());
        outcome
    }

    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        let id = id.clone();
        let written = id.label.clone();
        let outcome = self
            .blocking(move |db, labels| {
                let txn = db.begin_write()?;
                let Some((record, mut info)) = read_row_and_info(&txn, &id, labels)? else {
                    return Ok(None);
                };
                info.remove_image(record.chunk_number, record.pooled_nanos())?;
                delete_row(&txn, &record)?;
                write_info(&txn, &info)?;
                txn.commit()?;
                Ok(Some(record))
            })
            .await;
        self.cache.invalidate(written.as_str());
        outcome
    }

    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>> {
        self.modify(id, move |record| record.weight = weight).await
    }

    async fn set_hold(
        &self,
        id: &ImageId,
        hold: Option<resolvers::domain::hold::Hold>,
    ) -> anyhow::Result<Option<ImageRecord>> {
        self.modify(id, move |record| record.hold = hold).await
    }

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
