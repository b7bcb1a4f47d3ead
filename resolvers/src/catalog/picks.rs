//! Weighted random picks (`randomImage`, `randomImages`) over the chunk tables, and the
//! chunk info a pick may reuse for up to `chunk_info_max_age` (`PAWQL_CHUNK_INFO_MAX_AGE_MS`).
//!
//! The arithmetic of a draw is in `domain/sampling.rs`; here are the reads it needs and what
//! is done when a slot read does not fit the chunk info it came from.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::instrument;

use super::Catalog;
use crate::domain::chunks::{chunk_of, LabelChunks, Slot};
use crate::domain::image::ImageRecord;
use crate::domain::label::Label;
use crate::domain::sampling::{pick_chunk, ChunkDraw};
use crate::error::{ApiError, ApiResult};

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

impl Catalog {
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
    pub(super) fn forget_recent(&self, label: &Label) {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;
    use bytes::Bytes;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::catalog::{CatalogSettings, DEFAULT_MAX_RANDOM_COUNT};
    use crate::domain::chunks::{last_slot_to_read, refile, Refiling, ShardInfo, Write, WriteShards};
    use crate::domain::hold::Hold;
    use crate::domain::image::{sample_record, ImageId, ImageKind, NewImage, Sha256Hex};
    use crate::domain::stats::{chi_square, chi_square_critical_999};
    use crate::domain::ticket::{SignedUpload, UploadTicket};
    use crate::domain::variants::{ImageSize, VariantFacts};
    use crate::domain::weight::Weight;
    use crate::ports::{ChunkTables, ImageStore, Inserted, RowChange, Staged, StagedUploads};

    /// The `cat` label's chunk tables in memory, every change planned by the domain's own
    /// `refile` as the real stores plan theirs. Only what picks use is there: chunk info,
    /// slots, rows and changes of a row; every other label has never held an image.
    #[derive(Default)]
    struct FiledCats {
        filed: Mutex<Filed>,
        chunk_info_reads: AtomicUsize,
    }

    #[derive(Default)]
    struct Filed {
        /// Empty while no image was ever filed.
        shards: Vec<ShardInfo>,
        rows: HashMap<String, ImageRecord>,
        slots: HashMap<Slot, ImageRecord>,
    }

    impl Filed {
        fn apply(&mut self, plan: Refiling) {
            for write in plan.writes {
                match write {
                    Write::PutRow(row) => {
                        self.rows.insert(row.id.to_string(), row);
                    }
                    Write::DeleteRow(id) => {
                        self.rows.remove(&id.to_string());
                    }
                    Write::PutSlot(slot, copy) => {
                        self.slots.insert(slot, copy);
                    }
                    Write::DeleteSlot(slot) => {
                        self.slots.remove(&slot);
                    }
                    Write::PutShard(info) => {
                        let shard = info.shard as usize;
                        self.shards[shard] = info;
                    }
                }
            }
        }
    }

    impl FiledCats {
        /// `records` filed over three write shards, as uploads would file them.
        fn with(records: impl IntoIterator<Item = ImageRecord>) -> Arc<FiledCats> {
            let shards = WriteShards::new(3).expect("three shards");
            let mut filed = Filed {
                shards: (0..3).map(|s| ShardInfo::empty("cat", s)).collect(),
                ..Filed::default()
            };
            for record in records {
                let info = filed.shards[shards.shard_of(&record.id) as usize].clone();
                filed.apply(refile(info, None, Some(record), None).expect("filing a new image"));
            }
            Arc::new(FiledCats {
                filed: Mutex::new(filed),
                chunk_info_reads: AtomicUsize::new(0),
            })
        }

        /// Changes a row behind the catalogue's back, as another server would.
        fn change(&self, id: &ImageId, change: impl Fn(&ImageRecord) -> ImageRecord) -> Option<ImageRecord> {
            let mut filed = self.filed.lock().unwrap();
            let old = filed.rows.get(&id.to_string())?.clone();
            let new = change(&old);
            let info = filed.shards[old.shard as usize].clone();
            let last =
                last_slot_to_read(&info, &old, new.pooled_nanos()).and_then(|slot| filed.slots.get(&slot).cloned());
            let plan = refile(info, Some(&old), Some(new), last).expect("a change of what was read");
            let record = plan.record.clone();
            filed.apply(plan);
            record
        }

        fn chunk_info_reads(&self) -> usize {
            self.chunk_info_reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl ChunkTables for FiledCats {
        async fn chunk_info(&self, label: &Label) -> anyhow::Result<Option<LabelChunks>> {
            self.chunk_info_reads.fetch_add(1, Ordering::SeqCst);
            let filed = self.filed.lock().unwrap();
            let filed_here = label.as_str() == "cat" && !filed.shards.is_empty();
            Ok(filed_here.then(|| LabelChunks {
                shards: filed.shards.clone(),
            }))
        }
        async fn slots(&self, label: &Label, slots: &[Slot]) -> anyhow::Result<Vec<Option<ImageRecord>>> {
            assert_eq!(label.as_str(), "cat", "slots are only read of a label with chunk info");
            let filed = self.filed.lock().unwrap();
            Ok(slots.iter().map(|slot| filed.slots.get(slot).cloned()).collect())
        }
        async fn get_image(&self, id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
            Ok(self.filed.lock().unwrap().rows.get(&id.to_string()).cloned())
        }
        async fn update_image(&self, id: &ImageId, change: RowChange) -> anyhow::Result<Option<ImageRecord>> {
            Ok(self.change(id, |old| change(old)))
        }
        async fn insert_image(&self, _image: NewImage, _shards: WriteShards) -> anyhow::Result<Inserted> {
            unreachable!("picks insert nothing")
        }
        async fn remove_image(&self, _id: &ImageId) -> anyhow::Result<Option<ImageRecord>> {
            unreachable!("picks remove nothing")
        }
        async fn all_images(&self, _label: &Label) -> anyhow::Result<Vec<ImageRecord>> {
            unreachable!("picks never list a label")
        }
    }

    /// Picks never touch image bytes: every call here is a bug in the test's premise.
    struct NoBytes;

    #[async_trait]
    impl ImageStore for NoBytes {
        async fn put(&self, _: &ImageId, _: ImageKind, _: Bytes) -> anyhow::Result<()> {
            unreachable!()
        }
        async fn get(&self, _: &ImageId) -> anyhow::Result<Option<Bytes>> {
            unreachable!()
        }
        async fn delete(&self, _: &ImageId) -> anyhow::Result<()> {
            unreachable!()
        }
        async fn put_variant(&self, _: &ImageId, _: &VariantFacts, _: Bytes) -> anyhow::Result<()> {
            unreachable!()
        }
        async fn get_variant(&self, _: &ImageId, _: ImageSize) -> anyhow::Result<Option<Bytes>> {
            unreachable!()
        }
        async fn url(&self, _: &ImageRecord, _: Option<&VariantFacts>) -> anyhow::Result<String> {
            unreachable!()
        }
        async fn put_scan_upload(&self, _: &Sha256Hex, _: ImageKind, _: Bytes) -> anyhow::Result<()> {
            unreachable!()
        }
        async fn get_scan_upload(&self, _: &Sha256Hex) -> anyhow::Result<Option<Bytes>> {
            unreachable!()
        }
    }

    /// Nor staged uploads.
    #[async_trait]
    impl StagedUploads for NoBytes {
        async fn presign(&self, _: &UploadTicket, _: u64, _: Duration) -> anyhow::Result<String> {
            unreachable!()
        }
        fn takes_puts_here(&self) -> bool {
            unreachable!()
        }
        fn verify(&self, _: &SignedUpload) -> ApiResult<()> {
            unreachable!()
        }
        async fn write(&self, _: &UploadTicket, _: Bytes) -> anyhow::Result<()> {
            unreachable!()
        }
        async fn read(&self, _: &UploadTicket, _: usize) -> anyhow::Result<Staged> {
            unreachable!()
        }
        async fn delete(&self, _: &UploadTicket) -> anyhow::Result<()> {
            unreachable!()
        }
    }

    fn catalog_over(tables: Arc<FiledCats>, chunk_info_max_age: Duration) -> Catalog {
        let settings = CatalogSettings {
            chunk_info_max_age,
            ..CatalogSettings::default()
        };
        Catalog::new(Arc::new(NoBytes), Arc::new(NoBytes), tables, settings)
    }

    /// 30 cats whose weights (0.01 to 1) fall in many weight classes, several per class and
    /// unequal within one, so that both stages of a draw matter.
    fn skewed_cats() -> Vec<ImageRecord> {
        (0..30u32)
            .map(|i| {
                let weight = Weight::from_f64(0.01 + 0.99 * f64::from(i % 10) / 9.0).unwrap();
                sample_record(i, weight)
            })
            .collect()
    }

    fn held(mut record: ImageRecord) -> ImageRecord {
        record.hold = Some(Hold::AwaitingScan);
        record
    }

    /// How often each id came out of `calls` calls of `randomImages(cat, 100)`.
    async fn tally_picks(catalog: &Catalog, calls: usize, rng: &mut StdRng) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for _ in 0..calls {
            let picked = catalog.random_images_with("cat", 100, rng).await.unwrap();
            assert_eq!(picked.len(), 100, "every draw of a non-empty label gives an image");
            for image in picked {
                *counts.entry(image.id.to_string()).or_insert(0) += 1;
            }
        }
        counts
    }

    #[tokio::test]
    async fn picks_follow_weights_exactly_and_skip_held_images() {
        let cats = skewed_cats();
        let held_cat = held(sample_record(99, Weight::from_f64(1.0).unwrap()));
        let tables = FiledCats::with(cats.iter().cloned().chain([held_cat.clone()]));
        let catalog = catalog_over(tables, Duration::ZERO);

        let counts = tally_picks(&catalog, 1_000, &mut StdRng::seed_from_u64(7)).await;

        assert_eq!(counts.get(&held_cat.id.to_string()), None, "a held image was picked");
        let observed: Vec<u64> = cats
            .iter()
            .map(|c| counts.get(&c.id.to_string()).copied().unwrap_or(0))
            .collect();
        let total: u64 = cats.iter().map(|c| c.weight.nanos()).sum();
        let expected: Vec<f64> = cats.iter().map(|c| c.weight.nanos() as f64 / total as f64).collect();
        let stat = chi_square(&observed, &expected);
        let critical = chi_square_critical_999(cats.len() - 1);
        assert!(
            stat < critical,
            "chi-square {stat:.1} ≥ critical {critical:.1}: picks do not follow the weights"
        );
    }

    #[tokio::test]
    async fn an_image_held_after_its_chunk_info_was_kept_is_never_picked() {
        let cats = skewed_cats();
        let tables = FiledCats::with(cats.clone());
        let catalog = catalog_over(tables.clone(), Duration::from_secs(3600));
        let mut rng = StdRng::seed_from_u64(11);
        catalog.random_images_with("cat", 100, &mut rng).await.unwrap();
        // The heaviest class, so the kept chunk info sends many draws to its old slot.
        let victim = &cats[9];
        tables.change(&victim.id, |old| ImageRecord {
            hold: Some(Hold::not_a_cat(0.1)),
            ..old.clone()
        });

        let counts = tally_picks(&catalog, 200, &mut rng).await;

        assert_eq!(counts.get(&victim.id.to_string()), None, "a held image was picked");
        assert!(
            tables.chunk_info_reads() > 1,
            "draws that met the changed slots read the chunk info again"
        );
    }

    #[tokio::test]
    async fn a_label_with_no_images_gives_no_image() {
        let catalog = catalog_over(FiledCats::with(skewed_cats()), Duration::ZERO);

        assert_eq!(catalog.random_image("dog").await.unwrap(), None);
        assert_eq!(catalog.random_images("dog", 5).await.unwrap(), Vec::new());
    }

    #[tokio::test]
    async fn a_label_whose_images_are_all_held_gives_no_image() {
        let all_held = skewed_cats().into_iter().map(held);
        let catalog = catalog_over(FiledCats::with(all_held), Duration::ZERO);

        assert_eq!(catalog.random_images("cat", 5).await.unwrap(), Vec::new());
    }

    #[tokio::test]
    async fn more_than_the_maximum_count_is_the_clients_fault() {
        let catalog = catalog_over(FiledCats::with(skewed_cats()), Duration::ZERO);

        let asked = catalog.random_images("cat", DEFAULT_MAX_RANDOM_COUNT + 1).await;

        assert!(matches!(asked, Err(ApiError::BadUserInput(_))), "{asked:?}");
    }

    #[tokio::test]
    async fn without_a_max_age_every_pick_reads_the_chunk_info() {
        let tables = FiledCats::with(skewed_cats());
        let catalog = catalog_over(tables.clone(), Duration::ZERO);

        for _ in 0..3 {
            catalog.random_image("cat").await.unwrap().expect("a cat");
        }

        assert_eq!(tables.chunk_info_reads(), 3);
    }

    #[tokio::test]
    async fn kept_chunk_info_is_read_again_once_older_than_the_max_age() {
        // Long enough that a stalled 2-core CI machine does not age the info between the two
        // quick picks.
        let max_age = Duration::from_millis(1500);
        let tables = FiledCats::with(skewed_cats());
        let catalog = catalog_over(tables.clone(), max_age);

        catalog.random_image("cat").await.unwrap().expect("a cat");
        catalog.random_image("cat").await.unwrap().expect("a cat");
        let reads_while_fresh = tables.chunk_info_reads();
        tokio::time::sleep(max_age + Duration::from_millis(100)).await;
        catalog.random_image("cat").await.unwrap().expect("a cat");

        assert_eq!(reads_while_fresh, 1, "a pick within the max age reuses the kept info");
        assert_eq!(tables.chunk_info_reads(), 2, "a pick past the max age reads afresh");
    }

    #[tokio::test]
    async fn a_write_through_the_catalogue_drops_its_labels_kept_chunk_info() {
        let cats = skewed_cats();
        let tables = FiledCats::with(cats.clone());
        let catalog = catalog_over(tables.clone(), Duration::from_secs(3600));
        catalog.random_image("cat").await.unwrap().expect("a cat");

        catalog.set_weight(&cats[0].id.to_string(), 0.5).await.unwrap();
        catalog.random_image("cat").await.unwrap().expect("a cat");

        assert_eq!(
            tables.chunk_info_reads(),
            2,
            "the pick after a re-weight read the new info"
        );
    }

    /// A draw of the top weight class at ceiling 1.0, one of its two slots, and the copy of
    /// a weight-1.0 image filed there.
    fn top_class_draw() -> (ChunkDraw, Slot, ImageRecord) {
        let weight = Weight::from_f64(1.0).unwrap().nanos();
        let chunk = chunk_of(weight).unwrap();
        let draw = ChunkDraw {
            shard: 0,
            chunk,
            volume: 2,
            ceiling: weight,
        };
        let slot = Slot {
            shard: 0,
            chunk,
            index: 1,
        };
        let mut copy = sample_record(1, Weight::from_f64(1.0).unwrap());
        copy.slot = Some(slot);
        (draw, slot, copy)
    }

    fn settle_one(draw: &ChunkDraw, slot: Slot, found: Option<ImageRecord>) -> Settled {
        settle(draw, (&[slot], &[found]), &mut StdRng::seed_from_u64(3))
    }

    #[test]
    fn a_slot_copy_that_fits_the_chunk_info_at_its_ceiling_is_kept() {
        let (draw, slot, copy) = top_class_draw();

        let settled = settle_one(&draw, slot, Some(copy.clone()));

        assert!(matches!(settled, Settled::Kept(ref kept) if kept.id == copy.id));
    }

    #[test]
    fn a_slot_copy_that_does_not_fit_the_chunk_info_sends_the_draw_back_for_fresh_info() {
        let (draw, slot, copy) = top_class_draw();
        let held_copy = held(copy.clone());
        let moved_copy = ImageRecord {
            slot: Some(Slot { index: 0, ..slot }),
            ..copy.clone()
        };
        // 0.6 and 0.55 share the top class with 1.0: only the ceiling tells the copy is newer.
        let heavier_than_the_ceiling = ImageRecord {
            weight: Weight::from_f64(0.6).unwrap(),
            ..copy.clone()
        };
        let lower_ceiling = ChunkDraw {
            ceiling: Weight::from_f64(0.55).unwrap().nanos(),
            ..draw
        };
        assert_eq!(chunk_of(heavier_than_the_ceiling.weight.nanos()), Some(draw.chunk));

        for (what, settled) in [
            ("an empty slot", settle_one(&draw, slot, None)),
            ("a held copy", settle_one(&draw, slot, Some(held_copy))),
            ("a copy of another slot", settle_one(&draw, slot, Some(moved_copy))),
            (
                "a copy above the ceiling",
                settle_one(&lower_ceiling, slot, Some(heavier_than_the_ceiling)),
            ),
        ] {
            assert!(matches!(settled, Settled::Stale), "{what} was not taken as stale");
        }
    }
}
