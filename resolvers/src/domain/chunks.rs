//! Chunk bookkeeping: the `chunkInfoTable` record of one label.
//!
//! Images of a label are filed in numbered chunks so that a random pick reads one small
//! chunk instead of the whole label (the petAPI design). petAPI then chose a chunk
//! *uniformly*, which over-serves images in sparse chunks (a lone image in a new chunk is
//! drawn as often as a full chunk of 100). We also keep the **weight sum per chunk**, choose
//! a chunk in proportion to it, then an image in proportion to its weight:
//! P(image) = (S_c / W) · (w_i / S_c) = w_i / W, exactly.
//!
//! Field meanings (names as in the petAPI seed, plus `chunkWeightSum`):
//! - `chunkNumber`: how many chunks have been opened; the next new chunk gets this number.
//! - `chunkVolume[c]`, `chunkWeightSum[c]`: images in chunk `c`, and the weight sum (billionths)
//!   of those in the random pool (an image held out by the label check counts in the volume
//!   but adds nothing to the sum, so it is never drawn).
//! - `chunkThreshold`: a chunk accepts new images while its volume is below this (soft limit).
//! - `activeChunks`: exactly the chunks whose volume is below `chunkThreshold`, ascending.
//! - `chunkMax`: hard cap a chunk never exceeds. On DynamoDB concurrent writers may act on a
//!   slightly stale `activeChunks`; the conditional write guards `chunkVolume[c] < chunkMax`.

use serde::{Deserialize, Serialize};

use super::label::Label;

/// Default soft size of a chunk: one DynamoDB query page holds it comfortably.
pub const DEFAULT_CHUNK_THRESHOLD: u32 = 100;
/// Default hard cap of a chunk.
pub const DEFAULT_CHUNK_MAX: u32 = 120;

/// Chunk sizing for labels that do not have chunk info yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSizing {
    pub chunk_threshold: u32,
    pub chunk_max: u32,
}

impl ChunkSizing {
    pub fn new(chunk_threshold: u32, chunk_max: u32) -> anyhow::Result<ChunkSizing> {
        anyhow::ensure!(chunk_threshold >= 1, "chunkThreshold must be at least 1");
        anyhow::ensure!(
            chunk_max >= chunk_threshold,
            "chunkMax ({chunk_max}) must be at least chunkThreshold ({chunk_threshold})"
        );
        Ok(ChunkSizing {
            chunk_threshold,
            chunk_max,
        })
    }
}

impl Default for ChunkSizing {
    fn default() -> Self {
        ChunkSizing {
            chunk_threshold: DEFAULT_CHUNK_THRESHOLD,
            chunk_max: DEFAULT_CHUNK_MAX,
        }
    }
}

/// The bookkeeping of one label. Serialised with the seed's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkInfo {
    pub label: String,
    pub chunk_number: u32,
    pub chunk_max: u32,
    pub chunk_threshold: u32,
    pub active_chunks: Vec<u32>,
    pub chunk_volume: Vec<u64>,
    pub chunk_weight_sum: Vec<u64>,
}

/// A bookkeeping change that would break the rules; adapters turn it into an internal error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk {0} does not exist")]
    NoSuchChunk(u32),
    #[error("chunk {0} is full")]
    ChunkFull(u32),
    #[error("chunk {0} would go negative")]
    Underflow(u32),
}

impl ChunkInfo {
    /// Bookkeeping of a label with no chunks yet.
    pub fn empty(label: &Label, sizing: ChunkSizing) -> ChunkInfo {
        ChunkInfo {
            label: label.to_string(),
            chunk_number: 0,
            chunk_max: sizing.chunk_max,
            chunk_threshold: sizing.chunk_threshold,
            active_chunks: Vec::new(),
            chunk_volume: Vec::new(),
            chunk_weight_sum: Vec::new(),
        }
    }

    /// Images in the label.
    pub fn image_count(&self) -> u64 {
        self.chunk_volume.iter().sum()
    }

    /// Weight sum of the label, in billionths.
    pub fn total_weight(&self) -> u64 {
        self.chunk_weight_sum.iter().sum()
    }

    /// Where a new image goes: the lowest active chunk, or a new chunk when none is active.
    pub fn chunk_for_new_image(&self) -> u32 {
        self.active_chunks.first().copied().unwrap_or(self.chunk_number)
    }

    /// Files an image of `weight` in `chunk` (an existing chunk, or `chunk_number` to open one).
    /// `pooled`: the image's [`ImageRecord::pooled_nanos`](crate::domain::image::ImageRecord::pooled_nanos).
    pub fn add_image(&mut self, chunk: u32, pooled: u64) -> Result<(), ChunkError> {
        if chunk == self.chunk_number {
            self.chunk_number += 1;
            self.chunk_volume.push(0);
            self.chunk_weight_sum.push(0);
        }
        let c = self.index(chunk)?;
        if self.chunk_volume[c] >= u64::from(self.chunk_max) {
            return Err(ChunkError::ChunkFull(chunk));
        }
        self.chunk_volume[c] += 1;
        self.chunk_weight_sum[c] += pooled;
        self.refresh_active(chunk);
        Ok(())
    }

    /// Takes an image of `weight` out of `chunk`.
    pub fn remove_image(&mut self, chunk: u32, pooled: u64) -> Result<(), ChunkError> {
        let c = self.index(chunk)?;
        if self.chunk_volume[c] == 0 || self.chunk_weight_sum[c] < pooled {
            return Err(ChunkError::Underflow(chunk));
        }
        self.chunk_volume[c] -= 1;
        self.chunk_weight_sum[c] -= pooled;
        self.refresh_active(chunk);
        Ok(())
    }

    /// Replaces one image's pooled weight in `chunk` (a new weight, or held ↔ in the pool).
    pub fn change_weight(&mut self, chunk: u32, old: u64, new: u64) -> Result<(), ChunkError> {
        let c = self.index(chunk)?;
        let without = self.chunk_weight_sum[c]
            .checked_sub(old)
            .ok_or(ChunkError::Underflow(chunk))?;
        self.chunk_weight_sum[c] = without + new;
        Ok(())
    }

    fn index(&self, chunk: u32) -> Result<usize, ChunkError> {
        let c = chunk as usize;
        if c < self.chunk_volume.len() && c < self.chunk_weight_sum.len() {
            Ok(c)
        } else {
            Err(ChunkError::NoSuchChunk(chunk))
        }
    }

    /// Keeps `active_chunks` equal to { c : volume[c] < threshold }, ascending.
    fn refresh_active(&mut self, chunk: u32) {
        let below = self.chunk_volume[chunk as usize] < u64::from(self.chunk_threshold);
        match (self.active_chunks.binary_search(&chunk), below) {
            (Err(at), true) => self.active_chunks.insert(at, chunk),
            (Ok(at), false) => {
                self.active_chunks.remove(at);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::label::LabelSet;
    use crate::domain::weight::Weight;

    fn cat() -> Label {
        LabelSet::default_pets().parse("cat").unwrap()
    }

    /// A pooled weight in billionths.
    fn w(x: f64) -> u64 {
        Weight::from_f64(x).unwrap().nanos()
    }

    fn fill(info: &mut ChunkInfo, n: usize, weight: u64) -> Vec<u32> {
        (0..n)
            .map(|_| {
                let chunk = info.chunk_for_new_image();
                info.add_image(chunk, weight).unwrap();
                chunk
            })
            .collect()
    }

    #[test]
    fn new_chunks_open_when_active_ones_reach_the_threshold() {
        let mut info = ChunkInfo::empty(&cat(), ChunkSizing::new(3, 5).unwrap());
        let chunks = fill(&mut info, 7, w(0.5));
        assert_eq!(chunks, vec![0, 0, 0, 1, 1, 1, 2]);
        assert_eq!(info.chunk_number, 3);
        assert_eq!(info.chunk_volume, vec![3, 3, 1]);
        assert_eq!(info.chunk_weight_sum, vec![1_500_000_000, 1_500_000_000, 500_000_000]);
        assert_eq!(info.active_chunks, vec![2]);
        assert_eq!(info.image_count(), 7);
    }

    #[test]
    fn deleting_below_the_threshold_reactivates_the_lowest_chunk_first() {
        let mut info = ChunkInfo::empty(&cat(), ChunkSizing::new(2, 2).unwrap());
        fill(&mut info, 5, w(0.25));
        assert_eq!(info.active_chunks, vec![2]);
        info.remove_image(0, w(0.25)).unwrap();
        assert_eq!(info.active_chunks, vec![0, 2]);
        assert_eq!(info.chunk_for_new_image(), 0);
        assert_eq!(info.total_weight(), 1_000_000_000);
    }

    #[test]
    fn a_chunk_never_exceeds_chunk_max() {
        let mut info = ChunkInfo::empty(&cat(), ChunkSizing::new(1, 2).unwrap());
        info.add_image(0, w(0.1)).unwrap();
        // A stale writer may still target chunk 0 (over the threshold, under the cap)...
        info.add_image(0, w(0.1)).unwrap();
        // ...but not past the cap.
        assert_eq!(info.add_image(0, w(0.1)), Err(ChunkError::ChunkFull(0)));
        assert_eq!(info.chunk_volume, vec![2]);
    }

    #[test]
    fn weight_changes_and_removals_leave_exact_sums() {
        let mut info = ChunkInfo::empty(&cat(), ChunkSizing::default());
        info.add_image(0, w(0.1)).unwrap();
        info.add_image(0, w(0.2)).unwrap();
        info.change_weight(0, w(0.2), w(0.7)).unwrap();
        info.remove_image(0, w(0.1)).unwrap();
        assert_eq!(info.chunk_weight_sum, vec![700_000_000]);
        assert_eq!(info.remove_image(0, w(0.8)), Err(ChunkError::Underflow(0)));
        assert_eq!(info.remove_image(9, w(0.1)), Err(ChunkError::NoSuchChunk(9)));
    }

    #[test]
    fn chunk_info_serialises_with_the_seed_field_names() {
        let info = ChunkInfo::empty(&cat(), ChunkSizing::default());
        let json = serde_json::to_value(&info).unwrap();
        for field in [
            "label",
            "chunkNumber",
            "chunkMax",
            "chunkThreshold",
            "activeChunks",
            "chunkVolume",
            "chunkWeightSum",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
    }
}
