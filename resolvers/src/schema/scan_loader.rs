//! Batches `Image.scan`: the images of one response (`randomImages(count: 10) { scan { … } }`,
//! or several aliased lookups) read their scans in one store request — one `BatchGetItem` on
//! DynamoDB — instead of one `GetItem` each.
//!
//! The loader lives in the schema's data for the server's lifetime and caches nothing
//! (`DataLoader::new` is uncached): it only gathers the keys asked for within one short window
//! and reads them together, so a scan's status is never older than the request that reads it.
//! Batching across concurrent requests is harmless: a scan record is the same for every
//! caller, and what a caller may see of it (debug data) is decided later by `Scan`'s resolvers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};

use crate::domain::image::Sha256Hex;
use crate::domain::scan::ScanRecord;
use crate::error::ApiError;
use crate::scanning::Scanner;

/// How long the loader waits for more keys after the first. Sibling fields of a list resolve
/// in the same poll, so a short window catches them all and costs a lone lookup little.
const GATHER_WINDOW: Duration = Duration::from_micros(200);

/// Reads scans by the SHA-256 of their bytes, many at a time.
pub struct ScanLoader(Scanner);

/// The loader `Image.scan` uses, registered by `build_schema` beside the scanner.
pub type ScanDataLoader = DataLoader<ScanLoader>;

pub(crate) fn scan_data_loader(scanner: Scanner) -> ScanDataLoader {
    DataLoader::new(ScanLoader(scanner), tokio::spawn).delay(GATHER_WINDOW)
}

impl Loader<Sha256Hex> for ScanLoader {
    type Value = ScanRecord;
    /// Shared, because one failed batch answers every field that waited on it.
    type Error = Arc<ApiError>;

    async fn load(&self, hashes: &[Sha256Hex]) -> Result<HashMap<Sha256Hex, ScanRecord>, Self::Error> {
        self.0.scans_of(hashes).await.map_err(Arc::new)
    }
}
