//! Chunk bookkeeping: where every image of a label is filed, and the sums a pick draws from.
//!
//! petAPI filed a label's images in numbered chunks listed in one `chunkInfoTable` item. That
//! item grew with the catalogue (about 1 KB per 10,000 images) and every write of the label
//! rewrote it. pawql keeps petAPI's two stages — a chunk in proportion to its weight sum, then
//! an image of the chunk in proportion to its weight — on bookkeeping whose size does not
//! depend on the catalogue:
//!
//! - A label's images are spread over `S` **write shards** (`PAWQL_WRITE_SHARDS`), an image's
//!   shard fixed by its hash. Each shard has one chunk-info item (`cat#0`, `cat#1`, …), so
//!   writes of one label spread over `S` items instead of queueing on one.
//! - Within a shard, a **chunk** is a weight class: the images whose weights share their
//!   leading bit (at most 30 classes for weights in 1..=10⁹ billionths). A chunk's images
//!   sit in dense **slots** `0..chunkVolume`, one item each, so any one of them is read by key.
//! - The shard item lists, per chunk: `chunkVolume`, `chunkWeightSum` and `chunkCeiling` (the
//!   largest weight filed in the chunk since it was last empty; see the bounds below).
//!
//! A pick: chunk `c` of shard `s` with probability `chunkWeightSum / total` (all shard items,
//! one request), then a uniform slot of it, kept with probability `weight / chunkCeiling` and
//! otherwise drawn again in the same chunk. Given the chunk, image `i` is kept with probability
//! ∝ (1 / volume) · (w_i / ceiling) ∝ w_i, so P(i | c) = w_i / W_c, and
//! P(i) = (W_c / W) · (w_i / W_c) = w_i / W exactly.
//!
//! The bounds, which the rest of the code and the docs point to:
//! - Chunk `c` holds the weights `2^c ..= min(2^(c+1) - 1, 10⁹)` ([`chunk_of`]). Its ceiling
//!   only grows while the chunk holds images (filing and re-weighting raise it, removing does
//!   not lower it), and an emptied chunk leaves the lists, so its ceiling starts afresh. So
//!   every image `i` of the chunk has `2^c ≤ w_i ≤ ceiling ≤ class_ceiling(c) < 2^(c+1)`
//!   ([`class_ceiling`]): the ceiling is below twice the chunk's lightest weight.
//! - Hence a slot is kept with probability `w_i / ceiling > 2^c / 2^(c+1) = 1/2`. It is 1 when
//!   every image filed in the chunk since it was last empty had the same weight (as with one
//!   default weight for everything). No better bound holds: a chunk holding `2^c` and
//!   `2^(c+1) - 1` keeps the lighter with probability just above 1/2.
//! - Two slots read at once therefore leave a draw open with probability below 1/4.
//!
//! Every change is planned here ([`refile`]) as a list of [`Write`]s that a backend applies
//! atomically; removing an image from the middle of a chunk moves the chunk's last image into
//! its slot, so slots stay dense.

use serde::{Deserialize, Serialize};

use super::image::{ImageId, ImageRecord};
use super::weight::WEIGHT_SCALE;

/// Default number of write shards of a label: three items take 1,500 uploads a second by
/// DynamoDB's per-partition limit (BENCHMARKS.md, "Scale").
pub const DEFAULT_WRITE_SHARDS: u32 = 3;
/// More shards make every pick read more items; past this, bookkeeping reads dominate.
pub const MAX_WRITE_SHARDS: u32 = 32;

/// How many write shards new images are spread over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteShards(u32);

impl WriteShards {
    pub fn new(shards: u32) -> anyhow::Result<WriteShards> {
        anyhow::ensure!(
            (1..=MAX_WRITE_SHARDS).contains(&shards),
            "the number of write shards must be 1..={MAX_WRITE_SHARDS}, got {shards}"
        );
        Ok(WriteShards(shards))
    }

    pub fn count(self) -> u32 {
        self.0
    }

    /// The shard of an image: from its hash, so a retried upload lands where the first did.
    pub fn shard_of(self, id: &ImageId) -> u32 {
        let prefix = u32::from_str_radix(&id.sha256.as_str()[..8], 16).expect("a sha256 is hex");
        prefix % self.0
    }
}

impl Default for WriteShards {
    fn default() -> Self {
        WriteShards(DEFAULT_WRITE_SHARDS)
    }
}

/// The chunk (weight class) of a pooled weight in billionths: the position of its leading
/// bit, so a chunk's weights are within a factor of two (at most 30 chunks for weights in
/// 1..=10⁹). Held images (weight 0 in the pool) have no chunk.
pub fn chunk_of(pooled: u64) -> Option<u32> {
    (pooled > 0).then(|| 63 - pooled.leading_zeros())
}

/// The largest weight a chunk (class) can hold: `2^(chunk+1) - 1` (10⁹ for the top class), below
/// twice the lightest the class holds, `2^chunk`. A chunk's `chunkCeiling` never exceeds it.
pub fn class_ceiling(chunk: u32) -> u64 {
    ((1u64 << (chunk + 1)) - 1).min(WEIGHT_SCALE)
}

// A slot is where a row is filed, so the row (`image.rs`) holds it; re-exported here, with
// the chunks it is a place in.
pub use super::image::Slot;

/// The key of a shard's chunk-info item: `cat#0`. Labels never contain `#`, so these keys
/// cannot meet a label's own (the layout before write shards, see `pawql migrate`).
pub fn shard_key(label: &str, shard: u32) -> String {
    format!("{label}#{shard}")
}

/// One chunk's line in a shard item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkTally {
    pub chunk: u32,
    pub volume: u64,
    pub weight_sum: u64,
    pub ceiling: u64,
}

/// The chunk info of one write shard of a label. Serialised with the seed's field names
/// where they mean what they did (`chunkVolume`, `chunkWeightSum` per chunk); the chunks
/// present are listed in `chunkNumbers`, ascending, and only chunks holding images appear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardInfo {
    pub label: String,
    pub shard: u32,
    pub chunk_numbers: Vec<u32>,
    pub chunk_volume: Vec<u64>,
    pub chunk_weight_sum: Vec<u64>,
    pub chunk_ceiling: Vec<u64>,
    /// Images held out of the random pool (no chunk, no slot; counted in the label's images).
    pub held_volume: u64,
}

/// A bookkeeping change that does not fit what was read: the read was stale (a concurrent
/// writer moved things) or the stored data is broken. Adapters retry the former.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk {chunk} of shard {shard} would go negative")]
    Underflow { shard: u32, chunk: u32 },
    #[error("slot {0:?} was expected to hold the chunk's last image")]
    StaleLastSlot(Slot),
    #[error("image {0} is filed in shard {1}, not in the shard read")]
    WrongShard(String, u32),
}

impl ShardInfo {
    pub fn empty(label: &str, shard: u32) -> ShardInfo {
        ShardInfo {
            label: label.to_owned(),
            shard,
            chunk_numbers: Vec::new(),
            chunk_volume: Vec::new(),
            chunk_weight_sum: Vec::new(),
            chunk_ceiling: Vec::new(),
            held_volume: 0,
        }
    }

    /// The chunks holding images, ascending.
    pub fn chunks(&self) -> impl Iterator<Item = ChunkTally> + Clone + '_ {
        (0..self.chunk_numbers.len()).map(|i| ChunkTally {
            chunk: self.chunk_numbers[i],
            volume: self.chunk_volume[i],
            weight_sum: self.chunk_weight_sum[i],
            ceiling: self.chunk_ceiling[i],
        })
    }

    /// One chunk's line; `None` when the chunk holds nothing.
    pub fn chunk(&self, chunk: u32) -> Option<ChunkTally> {
        let i = self.chunk_numbers.binary_search(&chunk).ok()?;
        self.chunks().nth(i)
    }

    /// Images in the shard, held ones included.
    pub fn image_count(&self) -> u64 {
        self.chunk_volume.iter().sum::<u64>() + self.held_volume
    }

    /// Weight sum of the shard's pool, in billionths.
    pub fn total_weight(&self) -> u64 {
        self.chunk_weight_sum.iter().sum()
    }

    /// Files a pooled image at the end of its chunk; returns its slot.
    fn push(&mut self, pooled: u64) -> Slot {
        let chunk = chunk_of(pooled).expect("only pooled images take a slot");
        let i = match self.chunk_numbers.binary_search(&chunk) {
            Ok(i) => i,
            Err(i) => {
                self.chunk_numbers.insert(i, chunk);
                self.chunk_volume.insert(i, 0);
                self.chunk_weight_sum.insert(i, 0);
                self.chunk_ceiling.insert(i, 0);
                i
            }
        };
        let slot = Slot {
            shard: self.shard,
            chunk,
            index: self.chunk_volume[i],
        };
        self.chunk_volume[i] += 1;
        self.chunk_weight_sum[i] += pooled;
        self.chunk_ceiling[i] = self.chunk_ceiling[i].max(pooled);
        slot
    }

    /// Counts `count` pooled images of one weight at the end of their chunk, as that many
    /// [`refile`] inserts would (without their slots' writes): for models of a shard's size at
    /// scale (`capacity.rs`, the micro-benchmarks), not for storage.
    pub fn file_many(&mut self, pooled: u64, count: u64) {
        if count == 0 {
            return;
        }
        self.push(pooled);
        let chunk = chunk_of(pooled).expect("a pooled weight");
        let i = self.chunk_numbers.binary_search(&chunk).expect("just filed");
        self.chunk_volume[i] += count - 1;
        self.chunk_weight_sum[i] += pooled * (count - 1);
    }

    /// Where a chunk in use stands in the lists; a chunk not in use cannot give anything up.
    fn position(&self, chunk: u32) -> Result<usize, ChunkError> {
        self.chunk_numbers
            .binary_search(&chunk)
            .map_err(|_| self.underflow(chunk))
    }

    fn underflow(&self, chunk: u32) -> ChunkError {
        ChunkError::Underflow {
            shard: self.shard,
            chunk,
        }
    }

    /// Takes a pooled image's share out of its chunk; an emptied chunk leaves the lists (and
    /// its ceiling starts afresh).
    fn pull(&mut self, chunk: u32, pooled: u64) -> Result<(), ChunkError> {
        let i = self.position(chunk)?;
        if self.chunk_volume[i] == 0 || self.chunk_weight_sum[i] < pooled {
            return Err(self.underflow(chunk));
        }
        self.chunk_volume[i] -= 1;
        self.chunk_weight_sum[i] -= pooled;
        if self.chunk_volume[i] == 0 {
            self.chunk_numbers.remove(i);
            self.chunk_volume.remove(i);
            self.chunk_weight_sum.remove(i);
            self.chunk_ceiling.remove(i);
        }
        Ok(())
    }

    /// Replaces a pooled weight in place (same chunk, same slot).
    fn reweigh(&mut self, chunk: u32, old: u64, new: u64) -> Result<(), ChunkError> {
        let i = self.position(chunk)?;
        let without = self.chunk_weight_sum[i]
            .checked_sub(old)
            .ok_or_else(|| self.underflow(chunk))?;
        self.chunk_weight_sum[i] = without + new;
        self.chunk_ceiling[i] = self.chunk_ceiling[i].max(new);
        Ok(())
    }
}

/// One write of a planned change; a backend applies all of a plan's writes atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    PutRow(ImageRecord),
    DeleteRow(ImageId),
    /// The slot's item: a copy of the row filed there (a pick reads it instead of the row).
    PutSlot(Slot, ImageRecord),
    DeleteSlot(Slot),
    PutShard(ShardInfo),
}

/// A planned change: the shard as it will be, the writes that make it so, and the row as it
/// will be (`None` when removed).
#[derive(Debug, Clone, PartialEq)]
pub struct Refiling {
    pub info: ShardInfo,
    pub writes: Vec<Write>,
    pub record: Option<ImageRecord>,
}

/// Whether `old` becoming `new` (pooled weights; 0 = held or gone) keeps its slot.
fn stays_in_place(old: &ImageRecord, new_pooled: u64) -> bool {
    old.slot.is_some() && chunk_of(new_pooled) == old.slot.map(|s| s.chunk)
}

/// The slot whose image must be read before `old` can leave its slot: the last of its chunk,
/// when that is not `old` itself. `new_pooled`: what the image will weigh in the pool (0 when
/// held or removed).
pub fn last_slot_to_read(info: &ShardInfo, old: &ImageRecord, new_pooled: u64) -> Option<Slot> {
    let slot = old.slot?;
    if stays_in_place(old, new_pooled) {
        return None;
    }
    let volume = info.chunk(slot.chunk)?.volume;
    let last = Slot {
        index: volume.checked_sub(1)?,
        ..slot
    };
    (last != slot).then_some(last)
}

/// Plans a change of one image in `info`'s shard: an insert (`old` = `None`), a removal
/// (`new` = `None`), or a new weight or hold (both). `new` comes without a place; it gets one
/// here. `last`: the image in [`last_slot_to_read`]'s slot, when that asked for one.
pub fn refile(
    mut info: ShardInfo,
    old: Option<&ImageRecord>,
    new: Option<ImageRecord>,
    last: Option<ImageRecord>,
) -> Result<Refiling, ChunkError> {
    let mut writes = Vec::new();
    let new_pooled = new.as_ref().map_or(0, ImageRecord::pooled_nanos);
    let mut new = new.map(|mut record| {
        record.shard = info.shard;
        record.slot = None;
        record
    });
    let mut placed = false;
    if let Some(old) = old {
        if old.shard != info.shard {
            return Err(ChunkError::WrongShard(old.id.to_string(), old.shard));
        }
        match old.slot {
            Some(slot) if stays_in_place(old, new_pooled) => {
                info.reweigh(slot.chunk, old.pooled_nanos(), new_pooled)?;
                if let Some(record) = new.as_mut() {
                    record.slot = Some(slot);
                    writes.push(Write::PutSlot(slot, record.clone()));
                }
                placed = true;
            }
            Some(slot) => {
                let expected_last = last_slot_to_read(&info, old, new_pooled);
                info.pull(slot.chunk, old.pooled_nanos())?;
                match (expected_last, last) {
                    (None, _) => writes.push(Write::DeleteSlot(slot)),
                    (Some(at), Some(mut moved)) if moved.slot == Some(at) && moved.id != old.id => {
                        moved.slot = Some(slot);
                        writes.push(Write::PutSlot(slot, moved.clone()));
                        writes.push(Write::PutRow(moved));
                        writes.push(Write::DeleteSlot(at));
                    }
                    (Some(at), _) => return Err(ChunkError::StaleLastSlot(at)),
                }
            }
            None => {
                info.held_volume = info.held_volume.checked_sub(1).ok_or(ChunkError::Underflow {
                    shard: info.shard,
                    chunk: u32::MAX,
                })?;
            }
        }
    }
    if let Some(record) = new.as_mut().filter(|_| !placed) {
        if new_pooled > 0 {
            let slot = info.push(new_pooled);
            record.slot = Some(slot);
            writes.push(Write::PutSlot(slot, record.clone()));
        } else {
            info.held_volume += 1;
        }
    }
    match (&new, old) {
        (Some(record), _) => writes.push(Write::PutRow(record.clone())),
        (None, Some(old)) => writes.push(Write::DeleteRow(old.id.clone())),
        (None, None) => {}
    }
    writes.push(Write::PutShard(info.clone()));
    Ok(Refiling {
        info,
        writes,
        record: new,
    })
}

/// A label's bookkeeping: its shards' chunk info, as read together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelChunks {
    pub shards: Vec<ShardInfo>,
}

impl LabelChunks {
    pub fn image_count(&self) -> u64 {
        self.shards.iter().map(ShardInfo::image_count).sum()
    }

    pub fn total_weight(&self) -> u64 {
        self.shards.iter().map(ShardInfo::total_weight).sum()
    }

    /// Every chunk of every shard, with its shard.
    pub fn chunks(&self) -> impl Iterator<Item = (u32, ChunkTally)> + Clone + '_ {
        self.shards
            .iter()
            .flat_map(|info| info.chunks().map(move |tally| (info.shard, tally)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::weight::Weight;

    fn record(n: u32, weight: f64) -> ImageRecord {
        crate::domain::image::sample_record(n, Weight::from_f64(weight).unwrap())
    }

    /// Applies a plan to an in-memory shard: slot → image, row id → image.
    #[derive(Default)]
    struct Shard {
        info: Option<ShardInfo>,
        slots: std::collections::BTreeMap<Slot, ImageRecord>,
        rows: std::collections::BTreeMap<String, ImageRecord>,
    }

    impl Shard {
        fn info(&self) -> ShardInfo {
            self.info.clone().unwrap_or_else(|| ShardInfo::empty("cat", 0))
        }

        fn apply(&mut self, plan: Refiling) -> Option<ImageRecord> {
            for write in plan.writes {
                match write {
                    Write::PutRow(r) => {
                        self.rows.insert(r.id.to_string(), r);
                    }
                    Write::DeleteRow(id) => {
                        self.rows.remove(&id.to_string());
                    }
                    Write::PutSlot(s, r) => {
                        self.slots.insert(s, r);
                    }
                    Write::DeleteSlot(s) => {
                        self.slots.remove(&s);
                    }
                    Write::PutShard(info) => self.info = Some(info),
                }
            }
            plan.record
        }

        fn change(&mut self, id: &ImageId, new: Option<ImageRecord>) {
            let old = self.rows.get(&id.to_string()).cloned();
            let info = self.info();
            let pooled = new.as_ref().map_or(0, ImageRecord::pooled_nanos);
            let last = old
                .as_ref()
                .and_then(|o| last_slot_to_read(&info, o, pooled))
                .map(|s| self.slots[&s].clone());
            let plan = refile(info, old.as_ref(), new, last).unwrap();
            self.apply(plan);
        }

        /// Every slot dense and pointing at its row, and the tallies equal to the rows.
        fn assert_consistent(&self) {
            let info = self.info();
            let mut expected = ShardInfo::empty("cat", 0);
            let mut rows: Vec<&ImageRecord> = self.rows.values().collect();
            rows.sort_by_key(|r| r.slot);
            for row in rows {
                match row.slot {
                    Some(slot) => {
                        assert_eq!(self.slots[&slot], *row, "slot copy of {}", row.id);
                        let filed = expected.push(row.pooled_nanos());
                        assert_eq!(filed.chunk, slot.chunk);
                    }
                    None => expected.held_volume += 1,
                }
            }
            assert_eq!(info.chunk_numbers, expected.chunk_numbers);
            assert_eq!(info.chunk_volume, expected.chunk_volume);
            assert_eq!(info.chunk_weight_sum, expected.chunk_weight_sum);
            assert_eq!(info.held_volume, expected.held_volume);
            assert_eq!(self.slots.len() as u64, info.chunk_volume.iter().sum::<u64>());
            for tally in info.chunks() {
                for index in 0..tally.volume {
                    let slot = Slot {
                        shard: 0,
                        chunk: tally.chunk,
                        index,
                    };
                    let held = &self.slots[&slot];
                    assert!(held.pooled_nanos() <= tally.ceiling, "ceiling of chunk {}", tally.chunk);
                    assert!(tally.ceiling <= class_ceiling(tally.chunk));
                }
            }
        }
    }

    #[test]
    fn classes_cover_every_weight_within_a_factor_of_two() {
        for pooled in (1..=WEIGHT_SCALE)
            .step_by(9_973)
            .chain([1, 2, 3, 4, 5, 6, 7, 8, WEIGHT_SCALE])
        {
            let chunk = chunk_of(pooled).unwrap();
            assert!(chunk < 30, "{pooled}: chunk {chunk}");
            assert!(pooled <= class_ceiling(chunk), "{pooled} above its class ceiling");
            assert!(
                2 * pooled > class_ceiling(chunk),
                "{pooled} kept with probability ≤ 1/2"
            );
            if chunk > 0 {
                assert!(
                    pooled > class_ceiling(chunk - 1),
                    "{pooled} also fits class {}",
                    chunk - 1
                );
            }
        }
        assert_eq!(chunk_of(0), None);
        assert_eq!(class_ceiling(chunk_of(WEIGHT_SCALE).unwrap()), WEIGHT_SCALE);
    }

    #[test]
    fn inserts_removals_and_reweights_keep_slots_dense_and_tallies_exact() {
        let mut shard = Shard::default();
        let weights = [0.5, 0.5, 0.3, 1.0, 0.5, 0.31, 0.000_000_001, 0.9];
        for (n, &w) in weights.iter().enumerate() {
            let r = record(n as u32, w);
            shard.change(&r.id.clone(), Some(r));
            shard.assert_consistent();
        }
        // Remove from the middle of the 0.5 chunk: the last one moves into the hole.
        shard.change(&record(1, 0.5).id, None);
        shard.assert_consistent();
        // Re-weight within the class (in place), across classes (moves), hold, release.
        let mut r = shard.rows[&record(0, 0.5).id.to_string()].clone();
        r.weight = Weight::from_f64(0.45).unwrap();
        shard.change(&r.id.clone(), Some(r.clone()));
        shard.assert_consistent();
        r.weight = Weight::from_f64(0.01).unwrap();
        shard.change(&r.id.clone(), Some(r.clone()));
        shard.assert_consistent();
        r.hold = Some(crate::domain::hold::Hold::AwaitingScan);
        shard.change(&r.id.clone(), Some(r.clone()));
        shard.assert_consistent();
        assert_eq!(shard.info().held_volume, 1);
        r.hold = None;
        shard.change(&r.id.clone(), Some(r.clone()));
        shard.assert_consistent();
        for n in 0..weights.len() as u32 {
            shard.change(&record(n, 0.5).id, None);
            shard.assert_consistent();
        }
        assert_eq!(shard.info(), ShardInfo::empty("cat", 0));
        assert!(shard.slots.is_empty() && shard.rows.is_empty());
    }

    #[test]
    fn a_stale_last_slot_is_refused_not_written() {
        let mut shard = Shard::default();
        for n in 0..3 {
            let r = record(n, 0.5);
            shard.change(&r.id.clone(), Some(r));
        }
        let first = shard.rows[&record(0, 0.5).id.to_string()].clone();
        let info = shard.info();
        let last = last_slot_to_read(&info, &first, 0).unwrap();
        assert_eq!(last.index, 2);
        // What sits in slot 1 is not the last image: a concurrent writer moved things.
        let wrong = shard.slots[&Slot { index: 1, ..last }].clone();
        assert_eq!(
            refile(info, Some(&first), None, Some(wrong)),
            Err(ChunkError::StaleLastSlot(last))
        );
    }

    #[test]
    fn shard_items_serialise_with_the_seed_field_names() {
        let json = serde_json::to_value(ShardInfo::empty("cat", 2)).unwrap();
        for field in [
            "label",
            "chunkNumbers",
            "chunkVolume",
            "chunkWeightSum",
            "chunkCeiling",
            "heldVolume",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert_eq!(shard_key("cat", 2), "cat#2");
        let slot = Slot {
            shard: 2,
            chunk: 57,
            index: 12,
        };
        assert_eq!(slot.key("cat"), "cat#2#57#12");
    }

    #[test]
    fn write_shards_are_bounded_and_spread_images() {
        assert!(WriteShards::new(0).is_err());
        assert!(WriteShards::new(MAX_WRITE_SHARDS + 1).is_err());
        let shards = WriteShards::new(3).unwrap();
        let mut seen = [0u32; 3];
        for n in 0..300u32 {
            seen[shards.shard_of(&record(n, 0.5).id) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 60), "{seen:?}");
    }
}
