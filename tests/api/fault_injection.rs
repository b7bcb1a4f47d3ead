//! Fault injection: wrappers around every port (image store, chunk tables, scan store, cat
//! detector) that fail a named step while it is armed. `spawn_app_with_faults` runs a real
//! server over the wrapped ports; the tests in `faults.rs` arm each step of upload, delete,
//! setWeight and scan in turn and check what is left afterwards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use resolvers::domain::chunks::{LabelChunks, Slot, WriteShards};
use resolvers::domain::detection::{DetectError, Detection};
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord, NewImage, Sha256Hex};
use resolvers::domain::label::Label;
use resolvers::domain::scan::{ScanRecord, ScanRequested};
use resolvers::domain::ticket::UploadTicket;
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::domain::weight::Weight;
use resolvers::ports::{CatDetector, ChunkTables, ImageStore, Inserted, RowChange, ScanInput, ScanStore, Staged};

/// How an armed step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Returns an error.
    Error,
    /// Never answers in time (sleeps far longer than any test waits; a timeout must end it).
    Hang,
    /// The real port runs and its write commits, then the call reports an error anyway (a
    /// lost response, a timeout after the server acted): the caller cannot tell the two apart.
    AfterCommit,
}

/// The armed steps, each with how many more calls fail and how.
#[derive(Default)]
pub struct Faults {
    armed: Mutex<HashMap<&'static str, (u32, Fault)>>,
    /// Faults actually injected, by step.
    pub injected: Mutex<HashMap<&'static str, u32>>,
}

impl Faults {
    /// The next `times` calls of `step` fail with `fault`.
    pub fn arm(&self, step: &'static str, times: u32, fault: Fault) {
        self.armed.lock().unwrap().insert(step, (times, fault));
    }

    pub fn clear(&self) {
        self.armed.lock().unwrap().clear();
    }

    pub fn injected(&self, step: &str) -> u32 {
        self.injected.lock().unwrap().get(step).copied().unwrap_or(0)
    }

    /// Runs a port's `work` for `step`, failing it as armed: before it runs (`Error`, `Hang`),
    /// or after it has run (`AfterCommit`).
    async fn around<T>(
        &self,
        step: &'static str,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        if self.peek(step) == Some(Fault::AfterCommit) {
            let done = work.await?;
            self.enter(step).await?;
            return Ok(done);
        }
        self.enter(step).await?;
        work.await
    }

    fn peek(&self, step: &str) -> Option<Fault> {
        match self.armed.lock().unwrap().get(step) {
            Some((left, fault)) if *left > 0 => Some(*fault),
            _ => None,
        }
    }

    /// Called by a wrapper at the start of `step`: fails it if armed.
    async fn enter(&self, step: &'static str) -> anyhow::Result<()> {
        let fault = {
            let mut armed = self.armed.lock().unwrap();
            match armed.get_mut(step) {
                Some((left, fault)) if *left > 0 => {
                    *left -= 1;
                    Some(*fault)
                }
                _ => None,
            }
        };
        let Some(fault) = fault else { return Ok(()) };
        *self.injected.lock().unwrap().entry(step).or_default() += 1;
        if fault == Fault::Hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        anyhow::bail!("injected fault at {step}")
    }
}

pub struct FaultyStore {
    pub inner: Arc<dyn ImageStore>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl ImageStore for FaultyStore {
    async fn put(&self, id: &ImageId, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        self.faults.around("store.put", self.inner.put(id, kind, bytes)).await
    }
    async fn get(&self, id: &ImageId) -> anyhow::Result<Option<Bytes>> {
        self.faults.around("store.get", self.inner.get(id)).await
    }
    async fn delete(&self, id: &ImageId) -> anyhow::Result<()> {
        self.faults.around("store.delete", self.inner.delete(id)).await
    }
    async fn put_variant(&self, id: &ImageId, variant: &VariantFacts, bytes: Bytes) -> anyhow::Result<()> {
        self.faults
            .around("store.put_variant", self.inner.put_variant(id, variant, bytes))
            .await
    }
    async fn get_variant(&self, id: &ImageId, size: ImageSize) -> anyhow::Result<Option<Bytes>> {
        self.inner.get_variant(id, size).await
    }
    async fn url(&self, image: &ImageRecord, variant: Option<&VariantFacts>) -> anyhow::Result<String> {
        self.inner.url(image, variant).await
    }
    async fn presign_upload(&self, ticket: &UploadTicket, byte_size: u64, ttl: Duration) -> anyhow::Result<String> {
        self.inner.presign_upload(ticket, byte_size, ttl).await
    }
    async fn read_staged(&self, ticket: &UploadTicket, max_bytes: usize) -> anyhow::Result<Staged> {
        self.inner.read_staged(ticket, max_bytes).await
    }
    async fn delete_staged(&self, ticket: &UploadTicket) -> anyhow::Result<()> {
        self.inner.delete_staged(ticket).await
    }
    async fn put_scan_upload(&self, sha256: &Sha256Hex, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        self.inner.put_scan_upload(sha256, kind, bytes).await
    }
    async fn get_scan_upload(&self, sha256: &Sha256Hex) -> anyhow::Result<Option<Bytes>> {
        self.inner.get_scan_upload(sha256).await
    }
}

pub struct FaultyTables {
    pub inner: Arc<dyn ChunkTables>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl ChunkTables for FaultyTables {
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<LabelChunks>> {
        self.inner.chunk_info(label).await
    }
    async fn slots(&self, label: &Label, slots: &[Slot]) -> anyhow::Result<Vec<Option<ImageRecord>>> {
        self.inner.slots(label, slots).await
    }
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.faults.around("tables.get_image", self.inner.get_image(id)).await
    }
    async fn insert_image(&self, image: NewImage, shards: WriteShards) -> anyhow::Result<Inserted> {
        self.faults
            .around("tables.insert_image", self.inner.insert_image(image, shards))
            .await
    }
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        self.faults
            .around("tables.remove_image", self.inner.remove_image(id))
            .await
    }
    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>> {
        self.faults
            .around("tables.set_weight", self.inner.set_weight(id, weight))
            .await
    }
    async fn set_hold(
        &self,
        id: &ImageId,
        hold: Option<resolvers::domain::hold::Hold>,
    ) -> anyhow::Result<Option<ImageRecord>> {
        self.faults
            .around("tables.set_hold", self.inner.set_hold(id, hold))
            .await
    }
    async fn update_image(&self, id: &ImageId, change: RowChange) -> anyhow::Result<Option<ImageRecord>> {
        self.inner.update_image(id, change).await
    }
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        self.inner.all_images(label).await
    }
}

pub struct FaultyScans {
    pub inner: Arc<dyn ScanStore>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl ScanStore for FaultyScans {
    async fn get(&self, id: &str) -> anyhow::Result<Option<ScanRecord>> {
        self.inner.get(id).await
    }
    async fn request(&self, pending: ScanRecord, force: bool) -> anyhow::Result<ScanRequested> {
        self.faults
            .around("scans.request", self.inner.request(pending, force))
            .await
    }
    async fn claim(&self, id: &str, reclaim: bool) -> anyhow::Result<Option<ScanRecord>> {
        self.faults.around("scans.claim", self.inner.claim(id, reclaim)).await
    }
    async fn finish(&self, record: ScanRecord) -> anyhow::Result<bool> {
        self.faults.around("scans.finish", self.inner.finish(record)).await
    }
    async fn unfinished(&self, untouched_since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<String>> {
        self.inner.unfinished(untouched_since).await
    }
}

pub struct FaultyDetector {
    pub inner: Arc<dyn CatDetector>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl CatDetector for FaultyDetector {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn detect(&self, input: &ScanInput) -> Result<Detection, DetectError> {
        // A detector's own failures are its errors; throttling-like ones are retryable.
        if let Err(e) = self.faults.enter("detector.detect").await {
            return Err(DetectError::retryable("DETECTOR_UNAVAILABLE", e.to_string()));
        }
        self.inner.detect(input).await
    }
}
