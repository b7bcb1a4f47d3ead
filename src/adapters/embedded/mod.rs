//! The embedded backend: image files in a data directory and the two chunk tables in a
//! redb database beside them (`<data-dir>/pawql.redb`).
//!
//! Why redb rather than SQLite: it is pure Rust (no C build on 2 cores), its write
//! transactions are serialisable and durable (fsync on commit), and the two tables map to
//! typed key/value tables directly. Every bookkeeping change is one write transaction.

mod chunk_tables;
mod image_store;
mod read_cache;
mod rows;
mod scan_store;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

pub use chunk_tables::RedbChunkTables;
pub use image_store::FileImageStore;
pub use scan_store::RedbScanStore;

/// Opens (creating if needed) the embedded backend in `data_dir`. `public_url` is the base
/// URL the local server is reached at; image URLs are built on it.
pub fn open(
    data_dir: &Path,
    public_url: &str,
    settings: &resolvers::CatalogSettings,
) -> anyhow::Result<(Arc<FileImageStore>, Arc<RedbChunkTables>)> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let images = FileImageStore::open(
        &data_dir.join("images"),
        &data_dir.join("staging"),
        &data_dir.join("scan-uploads"),
        public_url,
    )?;
    let tables = RedbChunkTables::open(&data_dir.join("pawql.redb"), settings.labels.clone(), settings.shards)?;
    Ok((Arc::new(images), Arc::new(tables)))
}
