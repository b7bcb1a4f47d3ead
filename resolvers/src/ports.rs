//! Ports: what the domain needs from storage, named by the domain.
//!
//! Each port has a real embedded implementation (data directory + redb) and a real AWS
//! implementation (S3 + DynamoDB). Ports speak `anyhow::Result`: their failures are ours,
//! not the client's, and surface as `INTERNAL_SERVER_ERROR`.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::chunks::{ChunkInfo, ChunkSizing};
use crate::domain::image::{ImageId, ImageKind, ImageRecord, NewImage};
use crate::domain::label::Label;
use crate::domain::ticket::UploadTicket;
use crate::domain::weight::Weight;

/// Where image bytes live (S3, or files in the data directory).
#[async_trait]
pub trait ImageStore: Send + Sync {
    /// Stores the bytes under `id.storage_key()` with their content type. Overwriting with the
    /// same bytes is harmless: keys are content-addressed.
    async fn put(&self, id: &ImageId, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()>;
    /// The bytes of an image, or `None` when the object is missing.
    async fn get(&self, id: &ImageId) -> anyhow::Result<Option<Bytes>>;
    /// Removes the bytes; removing a missing object is not an error.
    async fn delete(&self, id: &ImageId) -> anyhow::Result<()>;
    /// A URL a client can GET the bytes from. Must not read the object.
    async fn url(&self, image: &ImageRecord) -> anyhow::Result<String>;

    /// A URL the client PUTs a file to (the presigned-upload flow), valid for `ttl`.
    async fn presign_upload(&self, ticket: &UploadTicket, ttl: Duration) -> anyhow::Result<String>;
    /// The staged file of a ticket, read only if it is at most `max_bytes` long.
    async fn read_staged(&self, ticket: &UploadTicket, max_bytes: usize) -> anyhow::Result<Staged>;
    /// Removes a staged file; removing a missing one is not an error.
    async fn delete_staged(&self, ticket: &UploadTicket) -> anyhow::Result<()>;
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

/// The two chunk tables of the petAPI design: `chunkInfoTable` and `imageChunksTable`
/// (with its `LabelChunkIndex`). Every method that writes changes the image row and the
/// chunk bookkeeping together, atomically: in one transaction, or with conditional writes.
#[async_trait]
pub trait ChunkTables: Send + Sync {
    /// The label's chunk bookkeeping; `None` if it never held an image.
    async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<ChunkInfo>>;
    /// The images filed in one chunk of a label (the `LabelChunkIndex` query).
    async fn chunk_images(&self, label: &Label, chunk: u32) -> anyhow::Result<Vec<ImageRecord>>;
    /// One image row.
    async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>>;
    /// Adds an image to a chunk chosen by [`ChunkInfo::chunk_for_new_image`]. A label's
    /// first image creates its chunk info with `sizing`.
    async fn insert_image(&self, image: NewImage, sizing: ChunkSizing) -> anyhow::Result<Inserted>;
    /// Removes an image row and its share of the bookkeeping; `None` if it did not exist.
    async fn remove_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>>;
    /// Changes an image's weight and its chunk's weight sum; `None` if it does not exist.
    async fn set_weight(&self, id: &ImageId, weight: Weight) -> anyhow::Result<Option<ImageRecord>>;
    /// Every image row of a label. For invariant checks and maintenance, never a request path.
    async fn all_images(&self, label: &Label) -> anyhow::Result<Vec<ImageRecord>>;
}
