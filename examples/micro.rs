//! Micro-benchmarks of the hot domain code, with medians over many runs (release only):
//! - a weighted pick: choosing a chunk from chunk info, then an image within a 100-image chunk,
//!   for labels of 1k to 1M images;
//! - upload validation (sniff, header, decode check, EXIF orientation) per format.
//!
//!     cargo run --release --example micro

use std::time::Instant;

use rand::SeedableRng;
use resolvers::domain::chunks::{ChunkInfo, ChunkSizing};
use resolvers::domain::sampling::{pick_chunk, pick_weighted};
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
    let labels = resolvers::domain::label::LabelSet::default_pets();
    let cat = labels.parse("cat")?;
    let sizing = ChunkSizing::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    println!(
        "{:>10} {:>8} {:>16} {:>18}",
        "images", "chunks", "pick chunk ns", "pick in chunk ns"
    );
    for images in [1_000u64, 10_000, 100_000, 1_000_000] {
        let mut info = ChunkInfo::empty(&cat, sizing);
        for n in 0..images {
            let chunk = info.chunk_for_new_image();
            info.add_image(chunk, 50_000_000 + (n % 19) * 47_000_000)?;
        }
        let chunks = info.chunk_weight_sum.len();
        let weights: Vec<u64> = (0..100u64).map(|n| 50_000_000 + (n % 19) * 47_000_000).collect();
        let chunk_ns = median_ns(31, 2_000, || {
            std::hint::black_box(pick_chunk(&info, &mut rng));
        });
        let image_ns = median_ns(31, 20_000, || {
            std::hint::black_box(pick_weighted(&weights, |w| *w, &mut rng));
        });
        println!("{images:>10} {chunks:>8} {chunk_ns:>16.0} {image_ns:>18.0}");
    }

    println!("\n{:<34} {:>10} {:>12}", "upload validation", "bytes", "median µs");
    let limits = UploadLimits::default();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg" | "webp")));
    files.sort();
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
