//! One forwarding base for the test wrappers around the ports: [`Hooked`] passes every call
//! of an image store, staged uploads, chunk tables or scan store to the real port, through a
//! [`Hook`] that sees the call's step name (`store.get`, `staged.read`, `tables.insert_image`,
//! `scans.claim`, …) and may count it, delay it or fail it. The fault injectors
//! ([`crate::support::fault_injection::Faults`]) and the read counter behind
//! [`crate::support::helpers::TestApp::image_reads`] are hooks; a new port method is forwarded
//! once, here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use resolvers::domain::chunks::{LabelChunks, Slot, WriteShards};
use resolvers::domain::hold::Hold;
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord, NewImage, Sha256Hex};
use resolvers::domain::label::Label;
use resolvers::domain::scan::{ScanDebug, ScanRecord, ScanRequested};
use resolvers::domain::ticket::{SignedUpload, UploadTicket};
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::domain::weight::Weight;
use resolvers::ports::{ChunkTables, ImageStore, Inserted, RowChange, ScanStore, Staged, StagedUploads};
use resolvers::ApiResult;

/// What a wrapper does around each call of the real port.
pub trait Hook: Send + Sync + 'static {
    /// Runs `work` (the real port's call for `step`), or not, as this hook sees fit.
    fn around<'a, T: Send + 'a>(
        &'a self,
        step: &'static str,
        work: BoxFuture<'a, anyhow::Result<T>>,
    ) -> BoxFuture<'a, anyhow::Result<T>>;
}

/// A port `P` whose every call goes through `hook`.
pub struct Hooked<P: ?Sized, H> {
    pub inner: Arc<P>,
    pub hook: Arc<H>,
}

impl<P: ?Sized, H> Hooked<P, H> {
    pub fn new(inner: Arc<P>, hook: Arc<H>) -> Hooked<P, H> {
        Hooked { inner, hook }
    }
}

/// `self.inner.method(args)` through the hook as `step`.
macro_rules! forward {
    ($self:ident, $step:literal, $method:ident($($arg:expr),*)) => {
        $self.hook.around($step, Box::pin($self.inner.$method($($arg),*))).await
    };
}

#[async_trait]
impl<H: Hook> ImageStore for Hooked<dyn ImageStore, H> {
    async fn put(&self, id: &ImageId, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        forward!(self, "store.put", put(id, kind, bytes))
    }
    async fn get(&self, id: &ImageId) -> anyhow::Result<Option<Bytes>> {
        forward!(self, "store.get", get(id))
    }
    async fn delete(&self, id: &ImageId) -> anyhow::Result<()> {
        forward!(self, "store.delete", delete(id))
    }
    async fn put_variant(&self, id: &ImageId, variant: &VariantFacts, bytes: Bytes) -> anyhow::Result<()> {
        forward!(self, "store.put_variant", put_variant(id, variant, bytes))
    }
    async fn get_variant(&self, id: &ImageId, size: ImageSize) -> anyhow::Result<Option<Bytes>> {
        forward!(self, "store.get_variant", get_variant(id, size))
    }
    async fn url(&self, image: &ImageRecord, variant: Option<&VariantFacts>) -> anyhow::Result<String> {
        forward!(self, "store.url", url(image, variant))
    }
    async fn put_scan_upload(&self, sha256: &Sha256Hex, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        forward!(self, "store.put_scan_upload", put_scan_upload(sha256, kind, bytes))
    }
    async fn get_scan_upload(&self, sha256: &Sha256Hex) -> anyhow::Result<Option<Bytes>> {
        forward!(self, "store.get_scan_upload", get_scan_upload(sha256))
    }
}

// The checks of a PUT's URL touch no storage (a signature and a clock), so they pass straight
// through: there is nothing there for a hook to delay or fail.
#[async_trait]
impl<H: Hook> StagedUploads for Hooked<dyn StagedUploads, H> {
    async fn presign(&self, ticket: &UploadTicket, byte_size: u64, ttl: Duration) -> anyhow::Result<String> {
        forward!(self, "staged.presign", presign(ticket, byte_size, ttl))
    }
    fn takes_puts_here(&self) -> bool {
        self.inner.takes_puts_here()
    }
    fn verify(&self, upload: &SignedUpload) -> ApiResult<()> {
        self.inner.verify(upload)
    }
    async fn write(&self, ticket: &UploadTicket, bytes: Bytes) -> anyhow::Result<()> {
        forward!(self, "staged.write", write(ticket, bytes))
    }
    async fn read(&self, ticket: &UploadTicket, max_bytes: usize) -> anyhow::Result<Staged> {
        forward!(self, "staged.read", read(ticket, max_bytes))
    }
    async fn delete(&self, ticket: &UploadTicket) -> anyhow::Result<()> {
        forward!(self, "staged.delete", delete(ticket))
    }
}

// The provided methods are forwarded too, so the real backend's own versions run (DynamoDB's
// batched `chunk_infos`), each under its own step name.
#[async_trait]
impl<H: Hook> ChunkTables for Hooked<dyn ChunkTables, H> {
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<LabelChunks>> {
        forward!(self, "tables.chunk_info", chunk_info(label))
    }
    async fn chunk_infos(&self, labels: &[Label]) -> anyhow::Result<Vec<Option<LabelChunks>>> {
        forward!(self, "tables.chunk_infos", chunk_infos(labels))
    }
    async fn slots(&self, label: &Label, slots: &[Slot]) -> anyhow::Result<Vec<Option<ImageRecord>>> {
        forward!(self, "tables.slots", slots(label, slots))
    }
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        forward!(self, "tables.get_image", get_image(id))
    }
    async fn insert_image(&self, image: NewImage, shards: WriteShards) -> anyhow::Result<Inserted> {
        forward!(self, "tables.insert_image", insert_image(image, shards))
    }
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
        forward!(self, "tables.remove_image", remove_image(id))
    }
    async fn update_image(&self, id: &ImageId, change: RowChange) -> anyhow::Result<Option<ImageRecord>> {
        forward!(self, "tables.update_image", update_image(id, change))
    }
    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>> {
        forward!(self, "tables.set_weight", set_weight(id, weight))
    }
    async fn set_hold(&self, id: &ImageId, hold: Option<Hold>) -> anyhow::Result<Option<ImageRecord>> {
        forward!(self, "tables.set_hold", set_hold(id, hold))
    }
    async fn set_renditions(
        &self,
        id: &ImageId,
        variants: Vec<VariantFacts>,
        placeholder: Option<String>,
    ) -> anyhow::Result<Option<ImageRecord>> {
        forward!(self, "tables.set_renditions", set_renditions(id, variants, placeholder))
    }
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
        forward!(self, "tables.all_images", all_images(label))
    }
}

#[async_trait]
impl<H: Hook> ScanStore for Hooked<dyn ScanStore, H> {
    async fn get(&self, id: &Sha256Hex) -> anyhow::Result<Option<ScanRecord>> {
        forward!(self, "scans.get", get(id))
    }
    async fn get_many(&self, ids: &[&Sha256Hex]) -> anyhow::Result<HashMap<Sha256Hex, ScanRecord>> {
        forward!(self, "scans.get_many", get_many(ids))
    }
    async fn request(&self, pending: ScanRecord, force: bool) -> anyhow::Result<ScanRequested> {
        forward!(self, "scans.request", request(pending, force))
    }
    async fn claim(&self, id: &Sha256Hex, reclaim: bool) -> anyhow::Result<Option<ScanRecord>> {
        forward!(self, "scans.claim", claim(id, reclaim))
    }
    async fn debug_of(&self, id: &Sha256Hex) -> anyhow::Result<Option<ScanDebug>> {
        forward!(self, "scans.debug_of", debug_of(id))
    }
    async fn finish(&self, record: ScanRecord) -> anyhow::Result<bool> {
        forward!(self, "scans.finish", finish(record))
    }
    async fn unfinished(&self, untouched_since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<Sha256Hex>> {
        forward!(self, "scans.unfinished", unfinished(untouched_since))
    }
}

/// Counts reads of image bytes (originals and variants): proof that `url` never reads them.
#[derive(Default)]
pub struct CountReads {
    pub gets: AtomicUsize,
}

impl Hook for CountReads {
    fn around<'a, T: Send + 'a>(
        &'a self,
        step: &'static str,
        work: BoxFuture<'a, anyhow::Result<T>>,
    ) -> BoxFuture<'a, anyhow::Result<T>> {
        if matches!(step, "store.get" | "store.get_variant") {
            self.gets.fetch_add(1, Ordering::SeqCst);
        }
        work
    }
}
