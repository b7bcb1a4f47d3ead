//! Ports: what the domain needs from storage, named by the domain.
//!
//! Each port has a real embedded implementation (data directory + redb) and a real AWS
//! implementation (S3 + DynamoDB). Ports speak `anyhow::Result`: their failures are ours,
//! not the client's, and surface as `INTERNAL_SERVER_ERROR`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::chunks::{LabelChunks, Slot, WriteShards};
use crate::domain::detection::{DetectError, Detection};
use crate::domain::image::{ImageId, ImageKind, ImageRecord, NewImage, Sha256Hex};
use crate::domain::label::Label;
use crate::domain::scan::{ScanRecord, ScanRequested};
use crate::domain::ticket::{SignedUpload, UploadTicket};
use crate::domain::variants::{ImageSize, VariantFacts};
use crate::domain::weight::Weight;

/// Where image bytes live (S3, or files in the data directory).
#[async_trait]
pub trait ImageStore: Send + Sync {
    /// Stores the bytes under `id.storage_key()` with their content type. Overwriting with the
    /// same bytes is harmless: keys are content-addressed.
    async fn put(&self, id: &ImageId, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()>;
    /// The bytes of an image, or `None` when the object is missing.
    async fn get(&self, id: &ImageId) -> anyhow::Result<Option<Bytes>>;
    /// Removes the bytes and every sized variant; removing what is missing is not an error.
    async fn delete(&self, id: &ImageId) -> anyhow::Result<()>;
    /// Stores a sized variant of an image beside it (`domain/variants.rs`).
    async fn put_variant(&self, id: &ImageId, variant: &VariantFacts, bytes: Bytes) -> anyhow::Result<()>;
    /// A variant's bytes, or `None` when it is not stored.
    async fn get_variant(&self, id: &ImageId, size: ImageSize) -> anyhow::Result<Option<Bytes>>;
    /// A URL a client can GET the bytes from: of `variant`, or of the original when `None`.
    /// Must not read the object. The same for the same bytes and size where the store can
    /// make it so (the local server, a CDN); a presigned URL carries its signing time.
    async fn url(&self, image: &ImageRecord, variant: Option<&VariantFacts>) -> anyhow::Result<String>;

    /// Stores bytes uploaded only to be scanned, under their hash.
    async fn put_scan_upload(&self, sha256: &Sha256Hex, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()>;
    /// The bytes of a scan-only upload, or `None`.
    async fn get_scan_upload(&self, sha256: &Sha256Hex) -> anyhow::Result<Option<Bytes>>;
}

/// The scan records (see [`crate::domain::scan`]). Every transition is conditional on the
/// state before it.
#[async_trait]
pub trait ScanStore: Send + Sync {
    /// A scan by its id: the SHA-256 of the scanned bytes.
    async fn get(&self, id: &Sha256Hex) -> anyhow::Result<Option<ScanRecord>>;
    /// The scans of many distinct ids at once (`Image.scan` over a list): the ids with no scan
    /// are absent from the map. A backend that can batch reads overrides this; the default reads
    /// one by one.
    async fn get_many(&self, ids: &[&Sha256Hex]) -> anyhow::Result<HashMap<Sha256Hex, ScanRecord>> {
        let mut found = HashMap::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.get(id).await? {
                found.insert((*id).clone(), record);
            }
        }
        Ok(found)
    }
    /// Records `pending` unless a scan of these bytes exists. With `force`, a *final* scan is
    /// replaced by `pending`; a pending or running one is returned as it is.
    async fn request(&self, pending: ScanRecord, force: bool) -> anyhow::Result<ScanRequested>;
    /// Claims a scan for work: `PENDING` → `RUNNING` (attempts + 1). With `reclaim`, a
    /// `RUNNING` scan (left by a crash) is claimed again. `None` when not claimable.
    async fn claim(&self, id: &Sha256Hex, reclaim: bool) -> anyhow::Result<Option<ScanRecord>>;
    /// A scan's debug data (`Scan.debug`, admin only), read only when asked for: a store may
    /// keep it apart from the record so that ordinary reads do not pay for it. By default,
    /// the record's own.
    async fn debug_of(&self, id: &Sha256Hex) -> anyhow::Result<Option<crate::domain::scan::ScanDebug>> {
        Ok(self.get(id).await?.and_then(|record| record.debug))
    }
    /// Writes the outcome of a claimed scan, only if it is still `RUNNING`; false otherwise.
    async fn finish(&self, record: ScanRecord) -> anyhow::Result<bool>;
    /// Ids of scans not final (`PENDING` or `RUNNING`) and untouched (requested or last
    /// claimed) before `untouched_since`: for recovery at start-up (pass now) and the sweep.
    /// Cheap on purpose: it reads ids only, never whole records with their debug data.
    async fn unfinished(&self, untouched_since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<Sha256Hex>>;
}

/// Hands a pending scan to whatever works on it: the local worker's queue, or nothing on AWS
/// (there the DynamoDB stream of the scan table invokes the scan handler).
pub trait ScanDispatch: Send + Sync {
    fn dispatch(&self, id: &Sha256Hex);
}

/// Staged uploads: where the file of a presigned upload waits between the client's PUT and
/// `completeUpload` (`staging/<label>/<token>`, in the bucket or the data directory). Everything
/// about them is here: the URL handed out, the check and write of a PUT this server takes, and
/// the read and removal by `completeUpload`.
///
/// Who takes the PUT differs by nature. The embedded store's URLs are the local server's own
/// `PUT /uploads/{ticket}`, signed by the store ([`crate::domain::ticket::UploadSigner`]): the
/// server checks them ([`StagedUploads::verify`]) and writes the body
/// ([`StagedUploads::write`]). S3's URLs are S3's own presigned PUTs: S3 checks its signature
/// and keeps the body, and the server's route refuses every PUT
/// ([`StagedUploads::takes_puts_here`] is false).
#[async_trait]
pub trait StagedUploads: Send + Sync {
    /// A URL the client PUTs a file to, valid for `ttl`. The URL takes exactly `byte_size`
    /// bytes (the length is signed: any other body is refused).
    async fn presign(&self, ticket: &UploadTicket, byte_size: u64, ttl: Duration) -> anyhow::Result<String>;
    /// Whether the URLs of [`StagedUploads::presign`] point at this server's
    /// `PUT /uploads/{ticket}`. Where they do not, that route answers every PUT with NOT_FOUND
    /// before reading anything of it: nothing there was signed by this server.
    fn takes_puts_here(&self) -> bool;
    /// Checks a PUT's URL before any of its body is read: the ticket, its declared length and
    /// its expiry must be as this store signed them, and the expiry not passed (FORBIDDEN).
    fn verify(&self, upload: &SignedUpload) -> crate::error::ApiResult<()>;
    /// Keeps `bytes` (of the length [`StagedUploads::verify`] accepted) as the file of
    /// `ticket`, replacing an earlier PUT.
    async fn write(&self, ticket: &UploadTicket, bytes: Bytes) -> anyhow::Result<()>;
    /// The staged file of a ticket, read only if it is at most `max_bytes` long.
    async fn read(&self, ticket: &UploadTicket, max_bytes: usize) -> anyhow::Result<Staged>;
    /// Removes a staged file; removing a missing one is not an error.
    async fn delete(&self, ticket: &UploadTicket) -> anyhow::Result<()>;
}

/// What a ticket's staging location holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Staged {
    /// Nothing was uploaded (yet), or it was already completed or expired.
    Missing,
    /// Larger than allowed; not read. Carries the size.
    TooLarge(u64),
    Bytes(Bytes),
}

/// Dispatches nothing: where something else picks pending scans up (the scan table's stream
/// on AWS), and for the local worker's own scanner (its runs never dispatch).
pub struct NoDispatch;

impl ScanDispatch for NoDispatch {
    fn dispatch(&self, _id: &Sha256Hex) {}
}

/// The bytes a detector looks at, and where they live.
#[derive(Debug, Clone)]
pub struct ScanInput {
    pub sha256: Sha256Hex,
    pub kind: ImageKind,
    /// The bytes; `None` when the detector reads this catalogue image from storage itself
    /// ([`CatDetector::reads_from_storage`]), so the scan did not fetch them.
    pub bytes: Option<Bytes>,
    /// The catalogue image, when the scan is of one (Rekognition can read it from S3).
    pub image: Option<ImageId>,
}

/// Decides whether an image shows a cat.
#[async_trait]
pub trait CatDetector: Send + Sync {
    /// Shown in `Scan.detector`.
    fn name(&self) -> &str;
    /// Whether this detector reads the catalogue image `image` from storage itself, as it is,
    /// so the scan need not fetch the bytes (one storage request fewer per scan). Decided on
    /// the row's recorded facts. Default: no, the detector gets the bytes.
    fn reads_from_storage(&self, _image: &ImageRecord) -> bool {
        false
    }
    async fn detect(&self, input: &ScanInput) -> Result<Detection, DetectError>;
}

/// Outcome of adding an image row.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// The row was added and the chunk bookkeeping updated, atomically.
    New(ImageRecord),
    /// A row with this id already existed; nothing changed.
    Existing(ImageRecord),
}

impl Inserted {
    pub fn into_record(self) -> ImageRecord {
        match self {
            Inserted::New(record) | Inserted::Existing(record) => record,
        }
    }
}

/// What [`ChunkTables::update_image`] makes of a row: shared, so a store can run it inside a
/// transaction on another thread, and again if the transaction has to be retried.
pub type RowChange = Arc<dyn Fn(&ImageRecord) -> ImageRecord + Send + Sync>;

/// Records `pending` (deduplicated by content, see [`ScanStore::request`]) and hands a new one
/// to `dispatch`; an existing scan of the same bytes is returned as it is.
pub async fn record_scan_request(
    scans: &dyn ScanStore,
    dispatch: &dyn ScanDispatch,
    pending: ScanRecord,
    force: bool,
) -> crate::error::ApiResult<ScanRecord> {
    match scans.request(pending, force).await? {
        ScanRequested::New(record) => {
            dispatch.dispatch(&record.id);
            Ok(record)
        }
        ScanRequested::Existing(record) => Ok(record),
    }
}

/// What a store answers for a label still in the layout before write shards (its home is
/// `error.rs`, with the other failures a client is told of).
pub use crate::error::MigrationPending;

/// The two chunk tables of the petAPI design, `chunkInfoTable` (a chunk-info item per write
/// shard, and one item per slot) and `imageChunksTable` (one row per image), kept by the plans
/// of [`crate::domain::chunks::refile`]. Every method that writes applies a whole plan
/// atomically: in one transaction.
#[async_trait]
pub trait ChunkTables: Send + Sync {
    /// The label's chunk info, every write shard's, read together (strongly consistent);
    /// `None` if the label never held an image.
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<LabelChunks>>;
    /// The chunk info of several labels, in the order asked (what `labels` shows). Backends
    /// that can read many items in one request override this; by default, one at a time.
    async fn chunk_infos(&self, labels: &[Label]) -> anyhow::Result<Vec<Option<LabelChunks>>> {
        let mut infos = Vec::with_capacity(labels.len());
        for label in labels {
            infos.push(self.chunk_info(label).await?);
        }
        Ok(infos)
    }
    /// The images in these slots as they are now (strongly consistent), in order; `None`
    /// where a slot is empty.
    async fn slots(&self, label: &Label, slots: &[Slot]) -> anyhow::Result<Vec<Option<ImageRecord>>>;
    /// One image row.
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>>;
    /// Adds an image to its write shard (of `shards`), at the end of its chunk.
    async fn insert_image(&self, image: NewImage, shards: WriteShards) -> anyhow::Result<Inserted>;
    /// Removes an image row and its share of the bookkeeping; `None` if it did not exist.
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>>;
    /// Changes an existing image's row with `change` (of the row as it is), and its share of
    /// the bookkeeping with it (its chunk's sums, its slot or its slot's copy), atomically;
    /// `None` if it does not exist. What every change below is made of.
    async fn update_image(&self, id: &ImageId, change: RowChange) -> anyhow::Result<Option<ImageRecord>>;
    /// Changes an image's weight and its chunk's weight sum; `None` if it does not exist.
    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>> {
        self.update_image(id, Arc::new(move |old| ImageRecord { weight, ..old.clone() }))
            .await
    }
    /// Holds an image out of the random pool (with the reason), or lets it in (`None`), and
    /// moves its weight out of or into its chunk; `None` if it does not exist.
    async fn set_hold(
        &self,
        id: &ImageId,
        hold: Option<crate::domain::hold::Hold>,
    ) -> anyhow::Result<Option<ImageRecord>> {
        self.update_image(
            id,
            Arc::new(move |old| ImageRecord {
                hold: hold.clone(),
                ..old.clone()
            }),
        )
        .await
    }
    /// Records an image's sized variants and placeholder (made after it was stored: `pawql
    /// variants`), on its row and its slot's copy; `None` if it does not exist.
    async fn set_renditions(
        &self,
        id: &ImageId,
        variants: Vec<crate::domain::variants::VariantFacts>,
        placeholder: Option<String>,
    ) -> anyhow::Result<Option<ImageRecord>> {
        self.update_image(
            id,
            Arc::new(move |old| ImageRecord {
                variants: variants.clone(),
                placeholder: placeholder.clone(),
                ..old.clone()
            }),
        )
        .await
    }
    /// Every image row of a label. For invariant checks and maintenance, never a request path.
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>>;
}
