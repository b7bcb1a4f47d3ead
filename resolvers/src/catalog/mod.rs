//! The catalogue service: upload, pick, look up, re-weight and delete images.
//!
//! This is where the ports are orchestrated and where "nothing left behind" is decided.
//! Resolvers stay thin and call these methods; so do the REST routes and the CLI.
//!
//! This file holds the [`Catalog`] type and its [`CatalogSettings`]; each concept has its own
//! file of `impl Catalog`:
//! - `upload.rs`: a direct upload, from validation to the row, and the clean-up when it fails.
//! - `presigned.rs`: the presigned-upload flow (`requestUpload`, then `completeUpload`).
//! - `picks.rs`: weighted random picks, and the chunk info a pick may keep for a while
//!   (`chunk_info_max_age`).
//! - `lookup.rs`: reads of images: one by id, its bytes or URL at a size, per-label totals.
//! - `edits.rs`: re-weighting and deleting an image.
//! - `backfill.rs`: making the variants of images stored before variants existed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::chunks::{LabelChunks, WriteShards};
use crate::domain::label::{Label, LabelSet};
use crate::domain::validation::UploadLimits;
use crate::label_check::LabelCheck;
use crate::ports::{ChunkTables, ImageStore, StagedUploads};

mod backfill;
mod edits;
mod lookup;
mod picks;
mod presigned;
mod upload;

pub use backfill::BackfillReport;
pub use lookup::LabelTotals;
pub use presigned::{UploadGrant, UPLOAD_TICKET_TTL};

/// Default and maximum of `randomImages(count)`.
pub const DEFAULT_RANDOM_COUNT: usize = 10;
pub const DEFAULT_MAX_RANDOM_COUNT: usize = 100;

/// Settings of the catalogue, from configuration.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    pub labels: LabelSet,
    pub limits: UploadLimits,
    /// How many write shards a label's new images are spread over.
    pub shards: WriteShards,
    pub max_random_count: usize,
    /// The label check: images uploaded under this label (`cat`) stay out of the random pool
    /// until a scan confirms a cat. `None`: off (every upload is in the pool at once).
    pub label_check: Option<Label>,
    /// How old a label's chunk info a pick may use (kept in this process). Zero (the default):
    /// every pick reads it, and picks are exactly proportional to the weights as they are.
    /// Above zero (opt-in): proportional to the weights as they stood at most this long ago,
    /// and a pick reads only its slots, so one label takes many more picks a second
    /// (docs/picks.md, "Bounded staleness"). A deleted or held image is never handed out
    /// either way.
    pub chunk_info_max_age: Duration,
}

impl CatalogSettings {
    /// What of these settings the scanner uses.
    pub fn scan_scope(&self) -> crate::scanning::ScanScope {
        crate::scanning::ScanScope {
            labels: self.labels.clone(),
            limits: self.limits,
            label_check: self.label_check.clone(),
        }
    }
}

impl Default for CatalogSettings {
    fn default() -> Self {
        CatalogSettings {
            labels: LabelSet::default_pets(),
            limits: UploadLimits::default(),
            shards: WriteShards::default(),
            max_random_count: DEFAULT_MAX_RANDOM_COUNT,
            label_check: None,
            chunk_info_max_age: Duration::ZERO,
        }
    }
}

/// The catalogue over an image store, its staged uploads and the chunk tables.
#[derive(Clone)]
pub struct Catalog {
    images: Arc<dyn ImageStore>,
    /// Where presigned uploads wait for `completeUpload` (`presigned.rs`).
    staged: Arc<dyn StagedUploads>,
    tables: Arc<dyn ChunkTables>,
    settings: CatalogSettings,
    /// Requests the scans the label check waits for (set when the check is on).
    checker: Option<LabelCheck>,
    /// Chunk info read at most `chunk_info_max_age` ago, per label (only when that is set).
    recent_info: Arc<std::sync::Mutex<HashMap<Label, (Instant, LabelChunks)>>>,
}

impl Catalog {
    pub fn new(
        images: Arc<dyn ImageStore>,
        staged: Arc<dyn StagedUploads>,
        tables: Arc<dyn ChunkTables>,
        settings: CatalogSettings,
    ) -> Catalog {
        Catalog {
            images,
            staged,
            tables,
            settings,
            checker: None,
            recent_info: Arc::default(),
        }
    }

    /// The catalogue with the label check: uploads under the checked label request their scan
    /// through it.
    pub fn with_label_check(mut self, check: Option<LabelCheck>) -> Catalog {
        self.checker = check;
        self
    }

    pub fn settings(&self) -> &CatalogSettings {
        &self.settings
    }
}
