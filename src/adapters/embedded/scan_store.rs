//! Scan records in the same redb file as the chunk tables (table `scanTable`, id → JSON).
//! Each transition is one write transaction that checks the state it starts from.

use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use resolvers::domain::image::Sha256Hex;
use resolvers::domain::scan::{ScanRecord, ScanRequested, ScanStatus};
use resolvers::ports::ScanStore;
use tracing::instrument;

/// scan id (SHA-256 hex) → scan record (JSON).
const SCANS: TableDefinition<&str, &[u8]> = TableDefinition::new("scanTable");

/// The redb implementation of [`ScanStore`].
pub struct RedbScanStore {
    db: Arc<Database>,
}

impl RedbScanStore {
    pub fn new(db: Arc<Database>) -> anyhow::Result<RedbScanStore> {
        let txn = db.begin_write()?;
        txn.open_table(SCANS)?;
        txn.commit()?;
        Ok(RedbScanStore { db })
    }

    async fn blocking<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> anyhow::Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .context("redb task panicked")?
    }
}

fn read(txn: &WriteTransaction, id: &str) -> anyhow::Result<Option<ScanRecord>> {
    let table = txn.open_table(SCANS)?;
    let record = table.get(id)?.map(|v| serde_json::from_slice(v.value())).transpose()?;
    Ok(record)
}

fn write(txn: &WriteTransaction, record: &ScanRecord) -> anyhow::Result<()> {
    txn.open_table(SCANS)?
        .insert(record.id.as_str(), serde_json::to_vec(record)?.as_slice())?;
    Ok(())
}

/// Expired scans count as absent (and are replaced); a sweep is not needed for correctness.
fn live(record: Option<ScanRecord>) -> Option<ScanRecord> {
    record.filter(|r| r.expires_at.is_none_or(|at| at > Utc::now()))
}

#[async_trait]
impl ScanStore for RedbScanStore {
    #[instrument(level = "debug", skip_all, fields(scan = %id))]
    async fn get(&self, id: &Sha256Hex) -> anyhow::Result<Option<ScanRecord>> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(SCANS)?;
            let record = table
                .get(id.as_str())?
                .map(|v| serde_json::from_slice(v.value()))
                .transpose()?;
            Ok(live(record))
        })
        .await
    }

    #[instrument(level = "debug", skip_all)]
    async fn request(&self, pending: ScanRecord, force: bool) -> anyhow::Result<ScanRequested> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            if let Some(existing) = live(read(&txn, pending.id.as_str())?) {
                if !force || !existing.status.is_final() {
                    return Ok(ScanRequested::Existing(existing));
                }
            }
            write(&txn, &pending)?;
            txn.commit()?;
            Ok(ScanRequested::New(pending))
        })
        .await
    }

    #[instrument(level = "debug", skip_all, fields(scan = %id))]
    async fn claim(&self, id: &Sha256Hex, reclaim: bool) -> anyhow::Result<Option<ScanRecord>> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let Some(record) = read(&txn, &id)? else {
                return Ok(None);
            };
            let claimable = record.status == ScanStatus::Pending || (reclaim && record.status == ScanStatus::Running);
            if !claimable {
                return Ok(None);
            }
            let record = record.claimed(chrono::Utc::now());
            write(&txn, &record)?;
            txn.commit()?;
            Ok(Some(record))
        })
        .await
    }

    #[instrument(level = "debug", skip_all)]
    async fn finish(&self, record: ScanRecord) -> anyhow::Result<bool> {
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let still_running = read(&txn, record.id.as_str())?.is_some_and(|r| r.status == ScanStatus::Running);
            if !still_running {
                return Ok(false);
            }
            write(&txn, &record)?;
            txn.commit()?;
            Ok(true)
        })
        .await
    }

    #[instrument(level = "debug", skip_all)]
    async fn unfinished(&self, untouched_since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<Sha256Hex>> {
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(SCANS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (_, value) = entry?;
                let record: ScanRecord = serde_json::from_slice(value.value())?;
                if record.touched_at().is_some_and(|at| at < untouched_since) {
                    out.push(record.id);
                }
            }
            Ok(out)
        })
        .await
    }
}
