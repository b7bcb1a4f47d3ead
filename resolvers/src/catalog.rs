//! The catalogue service: upload, pick, look up, re-weight and delete images.
//!
//! This is where the ports are orchestrated and where "nothing left behind" is decided.
//! Resolvers stay thin and call these methods; so do the REST routes and the CLI.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{instrument, warn};

use crate::deadline;
use crate::domain::chunks::{chunk_of, LabelChunks, Slot, WriteShards};
use crate::domain::hold::Hold;
use crate::domain::image::ImageKind;
use crate::domain::image::{ImageId, ImageRecord, NewImage};
use crate::domain::label::{Label, LabelSet};
use crate::domain::sampling::{pick_chunk, ChunkDraw};
use crate::domain::ticket::UploadTicket;
use crate::domain::validation::{decode_image_off_runtime, UploadLimits};
use crate::domain::variants::{renditions_off_runtime, ImageSize, Renditions};
use crate::domain::weight::Weight;
use crate::error::{ApiError, ApiResult};
use crate::label_check::LabelCheck;
use crate::ports::{ChunkTables, ImageStore, Staged};

/// Rounds of drawing again from fresh chunk info, for draws that met a slot a concurrent
/// writer had just changed, and the first pause between them (doubling, capped at 16×).
const REDRAW_ROUNDS: u32 = 6;
const REDRAW_PAUSE: Duration = Duration::from_millis(25);
/// Slots read at once for each open draw: a slot is kept with probability above 1/2, so two
/// settle a draw in one read with probability above 3/4 (the bounds and their proof are in the
/// header of `domain/chunks.rs`).
const SLOTS_PER_DRAW: usize = 2;
/// Reads of slots within one read of the chunk info: a round leaves a draw open with
/// probability below 1/4, so after this many an open draw is left with probability < 10⁻¹⁵.
const SLOT_ROUNDS: u32 = 25;

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

/// How long a presigned upload URL stays valid.
pub const UPLOAD_TICKET_TTL: Duration = Duration::from_secs(15 * 60);

/// A started presigned upload.
#[derive(Debug, Clone)]
pub struct UploadGrant {
    pub ticket: UploadTicket,
    pub upload_url: String,
    pub expires_at: DateTime<Utc>,
    pub max_bytes: usize,
}

/// What [`Catalog::backfill_renditions`] did to one label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillReport {
    pub made: usize,
    pub already_done: usize,
    /// Ids whose variants could not be made (logged); running again retries them.
    pub failed: Vec<String>,
}

/// Per-label totals for the `labels` query.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelTotals {
    pub label: Label,
    pub image_count: u64,
    /// Sum of weights in billionths.
    pub total_weight: u64,
}

/// The catalogue over an image store and the chunk tables.
#[derive(Clone)]
pub struct Catalog {
    images: Arc<dyn ImageStore>,
    tables: Arc<dyn ChunkTables>,
    settings: CatalogSettings,
    /// Requests the scans the label check waits for (set when the check is on).
    checker: Option<LabelCheck>,
    /// Chunk info read at most `chunk_info_max_age` ago, per label (only when that is set).
    recent_info: Arc<std::sync::Mutex<HashMap<Label, (Instant, LabelChunks)>>>,
}

/// The time an upload needs once started (decode, variants, S3 puts, the transaction): less
/// left on the request's deadline and it is refused before anything is written.
const UPLOAD_NEEDS: Duration = Duration::from_secs(5);
/// The same for a re-weight or a delete (one transaction, and a delete's object).
const WRITE_NEEDS: Duration = Duration::from_secs(2);

impl Catalog {
    pub fn new(images: Arc<dyn ImageStore>, tables: Arc<dyn ChunkTables>, settings: CatalogSettings) -> Catalog {
        Catalog {
            images,
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

    /// Validates and stores an image. Re-uploading the same bytes under the same label returns
    /// the existing image unchanged (its weight included): uploads are safe to retry.
    #[instrument(skip(self, bytes), fields(bytes = bytes.len()))]
    pub async fn upload(&self, label: &str, weight: Option<f64>, bytes: Bytes) -> ApiResult<ImageRecord> {
        deadline::ensure_time_for(UPLOAD_NEEDS, "an upload")?;
        let label = self.settings.labels.parse(label)?;
        let weight = weight.map(Weight::from_f64).transpose()?.unwrap_or(Weight::DEFAULT);
        let (facts, decoded) = decode_image_off_runtime(&bytes, self.settings.limits).await?;

        let checked = self.settings.label_check.as_ref() == Some(&label);
        let id = ImageId::new(label, facts.sha256.clone());
        if let Some(existing) = self.tables.get_image(&id).await? {
            return self.after_upload(existing, checked).await;
        }
        // Only a new image gets its variants made (a retried upload costs no resizing).
        let renditions = renditions_off_runtime(decoded, facts.clone())
            .await
            .map_err(|e| ApiError::Internal(e.context("making the image's variants")))?;
        if let Err(err) = self.store_with_variants(&id, facts.kind, bytes, &renditions).await {
            // A put that failed may still have stored the object (the answer was lost, or a
            // timeout hit after the store acted): nothing points at it, so it goes, variants
            // and all.
            self.remove_orphan_object(&id).await;
            return Err(ApiError::from(err.context("storing the uploaded image")));
        }
        let new = NewImage {
            id: id.clone(),
            weight,
            facts,
            created_at: Utc::now(),
            hold: checked.then_some(Hold::AwaitingScan),
            variants: renditions.variants.iter().map(|v| v.facts.clone()).collect(),
            placeholder: renditions.placeholder,
        };
        let inserted = self.tables.insert_image(new, self.settings.shards).await;
        self.forget_recent(&id.label);
        match inserted {
            Ok(inserted) => {
                if matches!(inserted, crate::ports::Inserted::New(_)) {
                    crate::metrics::upload();
                }
                self.after_upload(inserted.into_record(), checked).await
            }
            Err(err) => {
                // A row write whose outcome is unknown may yet stand: its object stays (an
                // object without a row is harmless, and a retry of the upload reuses it; a row
                // without its object is not).
                if err.downcast_ref::<crate::error::WriteOutcomeUnknown>().is_some() {
                    warn!(%id, error = format!("{err:#}"), "row write outcome unknown; the object is kept");
                } else {
                    self.remove_orphan_object(&id).await;
                }
                Err(ApiError::from(err.context("recording the uploaded image")))
            }
        }
    }

    /// The original, then each variant: all stored before the row points at them.
    async fn store_with_variants(
        &self,
        id: &ImageId,
        kind: crate::domain::image::ImageKind,
        bytes: Bytes,
        renditions: &Renditions,
    ) -> anyhow::Result<()> {
        self.images.put(id, kind, bytes).await?;
        for variant in &renditions.variants {
            self.images
                .put_variant(id, &variant.facts, variant.bytes.clone())
                .await
                .with_context(|| format!("storing the {} variant", variant.facts.size.as_str()))?;
        }
        Ok(())
    }

    /// Under the label check, an image still awaiting its scan gets it requested (again, on a
    /// retried upload: requests are deduplicated), and is returned as it then stands (a scan
    /// of these bytes may already be final). The image is stored either way: a failure here is
    /// healed by uploading again.
    async fn after_upload(&self, record: ImageRecord, checked: bool) -> ApiResult<ImageRecord> {
        if !checked || record.hold != Some(Hold::AwaitingScan) {
            return Ok(record);
        }
        let check = self.checker.as_ref().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "the label check is on, but this server has no detector"
            ))
        })?;
        check.request_at_upload(&record).await?;
        Ok(self.tables.get_image(&record.id).await?.unwrap_or(record))
    }

    /// Starts a presigned upload: a ticket and the URL to PUT the file to.
    /// `byte_size` is the file's exact length: the URL takes that many bytes and no other
    /// number, and no more than the upload limit is granted.
    #[instrument(skip(self))]
    pub async fn request_upload(&self, label: &str, byte_size: i64) -> ApiResult<UploadGrant> {
        let label = self.settings.labels.parse(label)?;
        let max_bytes = self.settings.limits.max_bytes;
        let byte_size = u64::try_from(byte_size)
            .ok()
            .filter(|&size| size > 0)
            .ok_or_else(|| ApiError::BadUserInput(format!("byteSize must be positive, got {byte_size}")))?;
        if byte_size > max_bytes as u64 {
            return Err(ApiError::PayloadTooLarge(format!(
                "byteSize {byte_size} is over the upload limit of {max_bytes} bytes"
            )));
        }
        let ticket = UploadTicket::new(label);
        // Taken before signing: the store's clock reads later, so the signature lasts at
        // least until the `expiresAt` the client is told. On S3 the URL also needs the
        // signing role's session to last that long (docs/aws-rules.md, S2).
        let expires_at = Utc::now() + UPLOAD_TICKET_TTL;
        let upload_url = self
            .images
            .presign_upload(&ticket, byte_size, UPLOAD_TICKET_TTL)
            .await?;
        Ok(UploadGrant {
            ticket,
            upload_url,
            expires_at,
            max_bytes: self.settings.limits.max_bytes,
        })
    }

    /// Finishes a presigned upload: the staged file goes through exactly the validation of a
    /// direct upload. The staged file is removed once the answer is final (filed, or refused
    /// for the client's fault); after an internal error it stays, so the call can be retried.
    #[instrument(skip(self))]
    pub async fn complete_upload(&self, ticket: &str, weight: Option<f64>) -> ApiResult<ImageRecord> {
        deadline::ensure_time_for(UPLOAD_NEEDS, "completing an upload")?;
        let ticket = UploadTicket::parse(ticket, &self.settings.labels)?;
        // Checked before the staged file is touched, so a typo costs nothing.
        weight.map(Weight::from_f64).transpose()?;
        let max_bytes = self.settings.limits.max_bytes;
        let bytes = match self.images.read_staged(&ticket, max_bytes).await? {
            Staged::Bytes(bytes) => bytes,
            Staged::Missing => {
                return Err(ApiError::NotFound(format!(
                    "nothing was uploaded for ticket {ticket} (not yet PUT, already completed, or expired)"
                )))
            }
            Staged::TooLarge(size) => {
                self.discard_staged(&ticket).await;
                return Err(ApiError::PayloadTooLarge(format!(
                    "the uploaded file has {size} bytes; the limit is {max_bytes}"
                )));
            }
        };
        let result = self.upload(ticket.label.as_str(), weight, bytes).await;
        if !matches!(result, Err(ApiError::Internal(_) | ApiError::MigrationPending(_))) {
            self.discard_staged(&ticket).await;
        }
        result
    }

    async fn discard_staged(&self, ticket: &UploadTicket) {
        if let Err(e) = deadline::cleanup(self.images.delete_staged(ticket)).await {
            warn!(%ticket, error = format!("{e:#}"), "could not remove a staged upload");
        }
    }

    /// After a failed row write: delete the object unless a concurrent upload of the same
    /// bytes did get its row in (then the object is that row's and must stay).
    async fn remove_orphan_object(&self, id: &ImageId) {
        // In the time kept for clean-up: the request's own time may be what ran out.
        match deadline::cleanup(self.tables.get_image(id)).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                if let Err(e) = deadline::cleanup(self.images.delete(id)).await {
                    warn!(%id, error = format!("{e:#}"), "could not remove an orphan image object");
                }
            }
            Err(e) => warn!(%id, error = format!("{e:#}"), "could not check for an orphan image object"),
        }
    }

    /// One image drawn with probability weight / label total; `None` when the label is empty.
    pub async fn random_image(&self, label: &str) -> ApiResult<Option<ImageRecord>> {
        Ok(self.random_images(label, 1).await?.pop())
    }

    /// `count` independent weighted draws (with replacement).
    pub async fn random_images(&self, label: &str, count: usize) -> ApiResult<Vec<ImageRecord>> {
        let mut rng = StdRng::from_rng(&mut rand::rng());
        self.random_images_with(label, count, &mut rng).await
    }

    /// [`Catalog::random_images`] with a caller-chosen random source (fixed seeds in tests).
    #[instrument(skip(self, rng))]
    pub async fn random_images_with<R: Rng + Send>(
        &self,
        label: &str,
        count: usize,
        rng: &mut R,
    ) -> ApiResult<Vec<ImageRecord>> {
        let label = self.settings.labels.parse(label)?;
        if count > self.settings.max_random_count {
            return Err(ApiError::BadUserInput(format!(
                "count must be at most {}, got {count}",
                self.settings.max_random_count
            )));
        }
        let mut picked = Vec::with_capacity(count);
        // A slot can change between the chunk-info read and the slot read (a concurrent
        // delete or re-weight); such draws are drawn again from fresh info, after a pause.
        let mut missing = count;
        for attempt in 0..REDRAW_ROUNDS {
            if missing == 0 {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(REDRAW_PAUSE * (1 << attempt.min(4))).await;
            }
            // Only the first round may use recent info: a redraw follows a slot that did not
            // fit what was read, so it reads afresh.
            let Some(chunks) = self.label_chunks(&label, attempt == 0).await? else {
                break;
            };
            if chunks.total_weight() == 0 {
                break;
            }
            missing = self.draw(&label, &chunks, missing, rng, &mut picked).await?;
        }
        if missing > 0
            && self
                .tables
                .chunk_info(&label)
                .await?
                .is_some_and(|chunks| chunks.total_weight() > 0)
        {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "{missing} of {count} draws from {label} met changed slots {REDRAW_ROUNDS} times"
            )));
        }
        crate::metrics::picks(picked.len());
        Ok(picked)
    }

    /// The label's chunk info: with `recent_ok` and a maximum age set, as read at most that
    /// long ago; otherwise read now (and kept for later picks, when a maximum age is set).
    async fn label_chunks(&self, label: &Label, recent_ok: bool) -> ApiResult<Option<LabelChunks>> {
        let max_age = self.settings.chunk_info_max_age;
        if max_age.is_zero() {
            return Ok(self.tables.chunk_info(label).await?);
        }
        if recent_ok {
            let recent = self.recent_info.lock().expect("recent info lock");
            if let Some((_, chunks)) = recent.get(label).filter(|(read_at, _)| read_at.elapsed() <= max_age) {
                return Ok(Some(chunks.clone()));
            }
        }
        let read_at = Instant::now();
        let chunks = self.tables.chunk_info(label).await?;
        let mut recent = self.recent_info.lock().expect("recent info lock");
        match &chunks {
            Some(chunks) => recent.insert(label.clone(), (read_at, chunks.clone())),
            None => recent.remove(label),
        };
        Ok(chunks)
    }

    /// After a write through this catalogue: its label's recent chunk info is out of date.
    fn forget_recent(&self, label: &Label) {
        if !self.settings.chunk_info_max_age.is_zero() {
            self.recent_info.lock().expect("recent info lock").remove(label);
        }
    }

    /// Draws `count` images from one read of the chunk info: a chunk for each draw, then
    /// [`SLOTS_PER_DRAW`] uniform slots of it per round, all open draws' slots in one read;
    /// the first slot kept settles its draw. Returns how many draws met a slot that does not
    /// fit the chunk info (changed since it was read): those need fresh info.
    async fn draw<R: Rng + Send>(
        &self,
        label: &Label,
        chunks: &LabelChunks,
        count: usize,
        rng: &mut R,
        picked: &mut Vec<ImageRecord>,
    ) -> ApiResult<usize> {
        let mut open: Vec<ChunkDraw> = (0..count).filter_map(|_| pick_chunk(chunks, rng)).collect();
        let mut stale = count - open.len();
        for _round in 0..SLOT_ROUNDS {
            if open.is_empty() {
                break;
            }
            let slots: Vec<Slot> = open
                .iter()
                .flat_map(|draw| {
                    std::iter::repeat_with(|| draw.slot(rng))
                        .take(SLOTS_PER_DRAW)
                        .collect::<Vec<_>>()
                })
                .collect();
            let found = self.tables.slots(label, &slots).await?;
            let mut still_open = Vec::new();
            for (draw, candidates) in open
                .into_iter()
                .zip(slots.chunks(SLOTS_PER_DRAW).zip(found.chunks(SLOTS_PER_DRAW)))
            {
                match settle(&draw, candidates, rng) {
                    Settled::Kept(record) => picked.push(record),
                    Settled::Rejected => still_open.push(draw),
                    Settled::Stale => stale += 1,
                }
            }
            open = still_open;
        }
        Ok(stale + open.len())
    }

    /// One image by id; `None` when it does not exist.
    pub async fn image(&self, id: &str) -> ApiResult<Option<ImageRecord>> {
        let id = ImageId::parse(id, &self.settings.labels)?;
        Ok(self.tables.get_image(&id).await?)
    }

    /// Changes an image's weight (and its chunk's weight sum, atomically).
    #[instrument(skip(self))]
    pub async fn set_weight(&self, id: &str, weight: f64) -> ApiResult<ImageRecord> {
        let id = ImageId::parse(id, &self.settings.labels)?;
        let weight = Weight::from_f64(weight)?;
        deadline::ensure_time_for(WRITE_NEEDS, "a re-weight")?;
        let changed = self.tables.set_weight(&id, weight).await;
        self.forget_recent(&id.label);
        changed?.ok_or_else(|| ApiError::NotFound(format!("no image with id {id}")))
    }

    /// Deletes an image: the row and its bookkeeping first, then the bytes. `false` when
    /// there was nothing to delete, so a retried delete is harmless.
    #[instrument(skip(self))]
    pub async fn delete(&self, id: &str) -> ApiResult<bool> {
        let id = ImageId::parse(id, &self.settings.labels)?;
        deadline::ensure_time_for(WRITE_NEEDS, "a delete")?;
        let removed = self.tables.remove_image(&id).await;
        self.forget_recent(&id.label);
        let removed = removed?;
        // Row first: a failure after it leaves bytes nothing points at, never a row pointing
        // at missing bytes. The object is removed even when the row was already gone, so
        // retrying a delete that failed half-way (an error the client saw) finishes the job.
        // (Unless another label holds the same bytes: keys are `{sha256}/{label}`, per label.)
        if let Err(e) = deadline::cleanup(self.images.delete(&id)).await {
            return Err(ApiError::Internal(
                e.context(format!("image {id}: row removed, object not; retry the delete")),
            ));
        }
        Ok(removed.is_some())
    }

    /// Gives every image of `label` stored before variants (no placeholder yet) its variants
    /// and placeholder (`pawql variants`). Idempotent and resumable: an image is done once its
    /// row names its renditions, and redoing one overwrites the same keys. Returns (made,
    /// already done); an image that fails is logged and counted by the caller as left.
    #[instrument(skip(self), fields(%label))]
    pub async fn backfill_renditions(&self, label: &Label) -> ApiResult<BackfillReport> {
        let mut report = BackfillReport::default();
        for row in self.tables.all_images(label).await? {
            if row.placeholder.is_some() {
                report.already_done += 1;
                continue;
            }
            match self.backfill_one(&row).await {
                Ok(()) => report.made += 1,
                Err(e) => {
                    warn!(id = %row.id, error = format!("{e:#}"), "could not make variants; run again");
                    report.failed.push(row.id.to_string());
                }
            }
        }
        Ok(report)
    }

    async fn backfill_one(&self, row: &ImageRecord) -> anyhow::Result<()> {
        let bytes = self
            .images
            .get(&row.id)
            .await?
            .with_context(|| format!("{} has a row but no object", row.id))?;
        // Stored bytes were validated at upload; the limits are the ones in force now.
        let (facts, decoded) = decode_image_off_runtime(&bytes, self.settings.limits)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let renditions = renditions_off_runtime(decoded, facts).await?;
        for variant in &renditions.variants {
            self.images
                .put_variant(&row.id, &variant.facts, variant.bytes.clone())
                .await?;
        }
        let facts = renditions.variants.iter().map(|v| v.facts.clone()).collect();
        self.tables
            .set_renditions(&row.id, facts, renditions.placeholder)
            .await?;
        self.forget_recent(&row.id.label);
        Ok(())
    }

    /// Image count and weight sum of every configured label.
    pub async fn label_totals(&self) -> ApiResult<Vec<LabelTotals>> {
        let labels: Vec<Label> = self.settings.labels.iter().cloned().collect();
        let infos = self.tables.chunk_infos(&labels).await?;
        Ok(labels
            .into_iter()
            .zip(infos)
            .map(|(label, info)| LabelTotals {
                label,
                image_count: info.as_ref().map_or(0, LabelChunks::image_count),
                total_weight: info.as_ref().map_or(0, LabelChunks::total_weight),
            })
            .collect())
    }

    /// The bytes of an image (what `Image.base64` and the image route serve).
    pub async fn image_bytes(&self, id: &ImageId) -> ApiResult<Bytes> {
        self.images
            .get(id)
            .await?
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("image {id} has a row but no object")))
    }

    /// Where a client can fetch the bytes at `size`: its variant's URL, or the original's
    /// where that size is not stored (never an error for asking a size).
    pub async fn image_url(&self, image: &ImageRecord, size: ImageSize) -> ApiResult<String> {
        let variant = image.variants.iter().find(|v| v.size == size);
        Ok(self.images.url(image, variant).await?)
    }

    /// The bytes at `size` and their type: the variant's, or the original's where that size
    /// is not stored (what `/images/{id}?size=` and `/random?size=` serve).
    pub async fn sized_bytes(&self, image: &ImageRecord, size: ImageSize) -> ApiResult<(Bytes, ImageKind)> {
        if let Some(variant) = image.variants.iter().find(|v| v.size == size) {
            if let Some(bytes) = self.images.get_variant(&image.id, size).await? {
                return Ok((bytes, variant.kind));
            }
            warn!(id = %image.id, size = size.as_str(), "a variant the row names is missing; serving the original");
        }
        Ok((self.image_bytes(&image.id).await?, image.kind))
    }
}

/// What a draw's slots, read together, decide.
enum Settled {
    Kept(ImageRecord),
    /// Every slot read was turned down by the weight test: draw slots of the chunk again.
    Rejected,
    /// A slot does not fit the chunk info the draw came from: read it again.
    Stale,
}

/// The first slot (in draw order) whose image the weight test keeps settles the draw; the
/// slots after it are not looked at, so each is an independent trial of the same chunk.
fn settle<R: Rng>(draw: &ChunkDraw, candidates: (&[Slot], &[Option<ImageRecord>]), rng: &mut R) -> Settled {
    for (slot, found) in candidates.0.iter().zip(candidates.1) {
        let Some(record) = found else {
            return Settled::Stale;
        };
        let pooled = record.pooled_nanos();
        if record.slot != Some(*slot) || chunk_of(pooled) != Some(draw.chunk) || pooled > draw.ceiling {
            return Settled::Stale;
        }
        if draw.keeps(pooled, rng) {
            return Settled::Kept(record.clone());
        }
    }
    Settled::Rejected
}
