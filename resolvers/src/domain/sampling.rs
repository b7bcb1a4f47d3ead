//! Weighted random picks, in integers so that the probabilities are exact.
//!
//! A pick is petAPI's two stages on the chunk bookkeeping of `chunks.rs`: a chunk (of any
//! shard) in proportion to its weight sum ([`pick_chunk`]), then an image of that chunk in
//! proportion to its weight: a uniform slot ([`ChunkDraw::slot`]) kept with probability
//! weight / ceiling ([`ChunkDraw::keeps`]), else another slot of the same chunk. With integer
//! weights and uniform integer draws each stage is exactly proportional, so P(image) = w_i / W.

use rand::Rng;

use super::chunks::{LabelChunks, Slot};

/// The chunk a draw landed on, as the bookkeeping read says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkDraw {
    pub shard: u32,
    pub chunk: u32,
    pub volume: u64,
    pub ceiling: u64,
}

impl ChunkDraw {
    /// A uniform slot of the chunk.
    pub fn slot<R: Rng + ?Sized>(&self, rng: &mut R) -> Slot {
        Slot {
            shard: self.shard,
            chunk: self.chunk,
            index: rng.random_range(0..self.volume),
        }
    }

    /// Whether the image found in a drawn slot is kept: with probability pooled / ceiling.
    /// A weight above the ceiling means the read was stale; the caller reads again.
    pub fn keeps<R: Rng + ?Sized>(&self, pooled: u64, rng: &mut R) -> bool {
        pooled >= self.ceiling || rng.random_range(0..self.ceiling) < pooled
    }
}

/// Picks a chunk of the label in proportion to its weight sum. `None` when the pool is empty.
pub fn pick_chunk<R: Rng + ?Sized>(chunks: &LabelChunks, rng: &mut R) -> Option<ChunkDraw> {
    let i = pick_index(chunks.chunks().map(|(_, tally)| tally.weight_sum), rng)?;
    let (shard, tally) = chunks.chunks().nth(i).expect("an index below the count");
    Some(ChunkDraw {
        shard,
        chunk: tally.chunk,
        volume: tally.volume,
        ceiling: tally.ceiling,
    })
}

/// Picks one item with probability weight(item) / sum of weights. `None` when the sum is 0.
pub fn pick_weighted<'a, T, R: Rng + ?Sized>(items: &'a [T], weight: impl Fn(&T) -> u64, rng: &mut R) -> Option<&'a T> {
    pick_index(items.iter().map(&weight), rng).map(|i| &items[i])
}

/// The index of one weight, drawn with probability weight / total. Walks the weights twice
/// (total, then the ticket) instead of collecting them: this runs once per drawn image.
fn pick_index<R: Rng + ?Sized>(weights: impl Iterator<Item = u64> + Clone, rng: &mut R) -> Option<usize> {
    let total: u64 = weights.clone().sum();
    if total == 0 {
        return None;
    }
    let mut ticket = rng.random_range(0..total);
    for (i, w) in weights.enumerate() {
        if ticket < w {
            return Some(i);
        }
        ticket -= w;
    }
    unreachable!("a ticket below the total always lands on a weight")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::domain::chunks::{refile, ShardInfo, Write, WriteShards};
    use crate::domain::stats::{chi_square, chi_square_critical_999};
    use crate::domain::weight::Weight;

    /// A label filed through the domain's own planning, kept in memory.
    struct Catalogue {
        chunks: LabelChunks,
        slots: HashMap<Slot, usize>,
        weights: Vec<u64>,
    }

    /// 41 images over 3 shards: weights 0.01 to 1 in many classes, plus one very light one.
    fn skewed_catalogue() -> Catalogue {
        let shards = WriteShards::new(3).unwrap();
        let mut infos: Vec<ShardInfo> = (0..3).map(|s| ShardInfo::empty("cat", s)).collect();
        let (mut slots, mut weights) = (HashMap::new(), Vec::new());
        for i in 0..41u32 {
            let weight = Weight::from_f64(if i == 40 {
                0.000_05
            } else {
                0.01 + 0.99 * f64::from(i % 10) / 9.0
            })
            .unwrap();
            let record = crate::domain::image::sample_record(i, weight);
            let shard = shards.shard_of(&record.id) as usize;
            let plan = refile(infos[shard].clone(), None, Some(record), None).unwrap();
            for write in &plan.writes {
                if let Write::PutSlot(slot, _) = write {
                    slots.insert(*slot, weights.len());
                }
            }
            infos[shard] = plan.info;
            weights.push(weight.nanos());
        }
        Catalogue {
            chunks: LabelChunks { shards: infos },
            slots,
            weights,
        }
    }

    fn observe(cat: &Catalogue, draws: usize, seed: u64) -> Vec<u64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0u64; cat.weights.len()];
        for _ in 0..draws {
            let draw = pick_chunk(&cat.chunks, &mut rng).unwrap();
            loop {
                let image = cat.slots[&draw.slot(&mut rng)];
                if draw.keeps(cat.weights[image], &mut rng) {
                    counts[image] += 1;
                    break;
                }
            }
        }
        counts
    }

    fn expected(weights: &[u64]) -> Vec<f64> {
        let total: u64 = weights.iter().sum();
        weights.iter().map(|&w| w as f64 / total as f64).collect()
    }

    const DRAWS: usize = 200_000;

    #[test]
    fn chunk_then_slot_picks_follow_weights_exactly() {
        let cat = skewed_catalogue();
        assert!(
            cat.chunks.shards.iter().all(|s| s.total_weight() > 0),
            "every shard holds images"
        );
        assert!(cat.chunks.chunks().count() > 10, "many chunks");
        let counts = observe(&cat, DRAWS, 7);
        let stat = chi_square(&counts, &expected(&cat.weights));
        let critical = chi_square_critical_999(cat.weights.len() - 1);
        assert!(
            stat < critical,
            "chi-square {stat:.1} ≥ critical {critical:.1}: picks are not proportional to weight"
        );
    }

    /// A slot kept regardless of its weight (a uniform pick inside the chunk) fails the same
    /// test: the acceptance step is what makes the second stage proportional.
    #[test]
    fn keeping_every_drawn_slot_fails_the_same_test() {
        let cat = skewed_catalogue();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0u64; cat.weights.len()];
        for _ in 0..DRAWS {
            let draw = pick_chunk(&cat.chunks, &mut rng).unwrap();
            counts[cat.slots[&draw.slot(&mut rng)]] += 1;
        }
        let stat = chi_square(&counts, &expected(&cat.weights));
        assert!(
            stat > 10.0 * chi_square_critical_999(cat.weights.len() - 1),
            "{stat:.1}"
        );
    }

    /// petAPI's rule: a uniformly chosen chunk of 10 images, then a weighted image of it.
    /// A lone image in a fresh chunk is served as often as a whole chunk.
    #[test]
    fn uniform_chunk_pick_of_petapi_fails_the_same_test() {
        let weights: Vec<u64> = (0..41u32)
            .map(|i| {
                let w = if i == 40 {
                    0.05
                } else {
                    0.01 + 0.99 * f64::from(i % 10) / 9.0
                };
                Weight::from_f64(w).unwrap().nanos()
            })
            .collect();
        let petapi_chunks: Vec<Vec<usize>> = (0..5).map(|c| (c * 10..(c * 10 + 10).min(41)).collect()).collect();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0u64; weights.len()];
        for _ in 0..DRAWS {
            let chunk = &petapi_chunks[rng.random_range(0..petapi_chunks.len())];
            counts[*pick_weighted(chunk, |&i| weights[i], &mut rng).unwrap()] += 1;
        }
        let stat = chi_square(&counts, &expected(&weights));
        let critical = chi_square_critical_999(weights.len() - 1);
        assert!(
            stat > 100.0 * critical,
            "chi-square {stat:.1} should be far above {critical:.1}"
        );
        let over = counts[40] as f64 / (expected(&weights)[40] * DRAWS as f64);
        assert!(over > 50.0, "lone image over-served only {over:.1}x");
    }

    #[test]
    fn zero_total_picks_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(pick_weighted(&[0u64, 0], |&w| w, &mut rng), None);
        assert_eq!(pick_weighted::<u64, _>(&[], |&w| w, &mut rng), None);
        assert_eq!(pick_chunk(&LabelChunks::default(), &mut rng), None);
    }
}
