//! Weighted random picks, in integers so that the probabilities are exact.
//!
//! A pick is two stages: a chunk in proportion to its weight sum, then an image of that
//! chunk in proportion to its weight. With integer weights and a uniform integer draw each
//! stage is exactly proportional, so P(image) = w_i / W.

use rand::Rng;

use super::chunks::ChunkInfo;

/// Picks one item with probability weight(item) / sum of weights. `None` when the sum is 0.
pub fn pick_weighted<'a, T, R: Rng + ?Sized>(items: &'a [T], weight: impl Fn(&T) -> u64, rng: &mut R) -> Option<&'a T> {
    pick_index(items.iter().map(&weight), rng).map(|i| &items[i])
}

/// Picks a chunk of the label in proportion to its weight sum. `None` when the label is empty.
pub fn pick_chunk<R: Rng + ?Sized>(info: &ChunkInfo, rng: &mut R) -> Option<u32> {
    pick_index(info.chunk_weight_sum.iter().copied(), rng).map(|c| c as u32)
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
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::domain::chunks::ChunkSizing;
    use crate::domain::label::LabelSet;
    use crate::domain::stats::{chi_square, chi_square_critical_999};
    use crate::domain::weight::Weight;

    struct Catalogue {
        info: ChunkInfo,
        /// (chunk, weight) per image, in upload order.
        images: Vec<(u32, Weight)>,
    }

    /// 4 full chunks of 10 images with weights from 0.01 to 1, plus a nearly empty last
    /// chunk holding one light image: the case where a uniform chunk pick goes badly wrong.
    fn skewed_catalogue() -> Catalogue {
        let label = LabelSet::default_pets().parse("cat").unwrap();
        let mut info = ChunkInfo::empty(&label, ChunkSizing::new(10, 10).unwrap());
        let mut images = Vec::new();
        for i in 0..41u32 {
            let weight = Weight::from_f64(if i == 40 {
                0.05
            } else {
                0.01 + 0.99 * f64::from(i % 10) / 9.0
            })
            .unwrap();
            let chunk = info.chunk_for_new_image();
            info.add_image(chunk, weight.nanos()).unwrap();
            images.push((chunk, weight));
        }
        assert_eq!(info.chunk_volume, vec![10, 10, 10, 10, 1]);
        Catalogue { info, images }
    }

    /// Draws `draws` images with a given chunk rule, then the in-chunk weighted pick.
    fn observe(
        cat: &Catalogue,
        draws: usize,
        seed: u64,
        chunk_rule: impl Fn(&ChunkInfo, &mut StdRng) -> u32,
    ) -> Vec<u64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let indices: Vec<usize> = (0..cat.images.len()).collect();
        let mut counts = vec![0u64; cat.images.len()];
        for _ in 0..draws {
            let chunk = chunk_rule(&cat.info, &mut rng);
            let in_chunk: Vec<usize> = indices.iter().copied().filter(|&i| cat.images[i].0 == chunk).collect();
            let &i = pick_weighted(&in_chunk, |&i| cat.images[i].1.nanos(), &mut rng).unwrap();
            counts[i] += 1;
        }
        counts
    }

    fn expected(cat: &Catalogue) -> Vec<f64> {
        let total: u64 = cat.images.iter().map(|(_, w)| w.nanos()).sum();
        cat.images
            .iter()
            .map(|(_, w)| w.nanos() as f64 / total as f64)
            .collect()
    }

    const DRAWS: usize = 200_000;

    #[test]
    fn weighted_chunk_pick_follows_weights_exactly() {
        let cat = skewed_catalogue();
        let counts = observe(&cat, DRAWS, 7, |info, rng| pick_chunk(info, rng).unwrap());
        let stat = chi_square(&counts, &expected(&cat));
        let critical = chi_square_critical_999(cat.images.len() - 1);
        assert!(
            stat < critical,
            "chi-square {stat:.1} ≥ critical {critical:.1}: picks are not proportional to weight"
        );
    }

    /// The petAPI rule (uniform chunk, then weighted in the chunk), kept so the difference stays visible.
    #[test]
    fn uniform_chunk_pick_of_petapi_fails_the_same_test() {
        let cat = skewed_catalogue();
        let counts = observe(&cat, DRAWS, 7, |info, rng| rng.random_range(0..info.chunk_number));
        let stat = chi_square(&counts, &expected(&cat));
        let critical = chi_square_critical_999(cat.images.len() - 1);
        assert!(
            stat > 100.0 * critical,
            "chi-square {stat:.1} should be far above {critical:.1}"
        );
        // The lone image of the last chunk is over-served by a large factor.
        let lone = cat.images.len() - 1;
        let over = counts[lone] as f64 / (expected(&cat)[lone] * DRAWS as f64);
        assert!(over > 50.0, "lone image over-served only {over:.1}x");
    }

    #[test]
    fn zero_total_picks_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(pick_weighted(&[0u64, 0], |&w| w, &mut rng), None);
        assert_eq!(pick_weighted::<u64, _>(&[], |&w| w, &mut rng), None);
    }
}
