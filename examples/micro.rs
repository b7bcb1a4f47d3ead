//! Micro-benchmarks of the hot domain code, with medians over many runs (release only):
//! - a weighted pick: choosing a chunk from the chunk info of three write shards, then a slot
//!   and its weight test, for labels of 1k to 100M images;
//! - upload validation (sniff, header, decode check, EXIF orientation) per format.
//!
//!     cargo run --release --example micro

#[path = "common/fixtures.rs"]
mod fixtures;

use std::time::Instant;

use rand::SeedableRng;
use resolvers::domain::chunks::{LabelChunks, ShardInfo};
use resolvers::domain::sampling::pick_chunk;
use resolvers::domain::validation::{validate_image, UploadLimits};

/// Median nanoseconds per call of `f`, over `rounds` batches of `batch` calls.
fn median_ns(rounds: usize, batch: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[rounds / 2]
}

fn main() -> anyhow::Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    println!(
        "{:>11} {:>8} {:>16} {:>18}",
        "images", "chunks", "pick chunk ns", "slot + keep ns"
    );
    for images in [1_000u64, 100_000, 10_000_000, 100_000_000] {
        // 19 distinct weights from 0.05 to 0.9, spread over three shards.
        let mut shards: Vec<ShardInfo> = (0..3).map(|s| ShardInfo::empty("cat", s)).collect();
        for n in 0..19u64 {
            let pooled = 50_000_000 + n * 47_000_000;
            for (s, info) in shards.iter_mut().enumerate() {
                info.file_many(pooled, images / 57 + u64::from((n * 3 + s as u64) < images % 57));
            }
        }
        let label = LabelChunks { shards };
        let chunks = label.chunks().count();
        let chunk_ns = median_ns(31, 2_000, || {
            std::hint::black_box(pick_chunk(&label, &mut rng));
        });
        let draw = pick_chunk(&label, &mut rng).expect("a full label");
        let slot_ns = median_ns(31, 20_000, || {
            std::hint::black_box(draw.slot(&mut rng));
            std::hint::black_box(draw.keeps(draw.ceiling / 2, &mut rng));
        });
        println!("{images:>11} {chunks:>8} {chunk_ns:>16.0} {slot_ns:>18.0}");
    }

    println!("\n{:<34} {:>10} {:>12}", "upload validation", "bytes", "median µs");
    let limits = UploadLimits::default();
    let files = fixtures::photos()?;
    for file in files {
        let bytes = std::fs::read(&file)?;
        let ns = median_ns(9, 5, || {
            std::hint::black_box(validate_image(&bytes, &limits).expect("a fixture photo is valid"));
        });
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        println!("{name:<34} {:>10} {:>12.0}", bytes.len(), ns / 1e3);
    }
    Ok(())
}
