//! What sized variants save a phone and cost an upload, over the fixture photos (release only):
//! per size, the median bytes a client downloads for one picked image (a size not stored is
//! the original), and per photo the time to decode and validate it alone against the time to
//! also make its variants and placeholder (the upload path), medians of 9 runs.
//!
//!     cargo run --release --example variants

#[path = "common/fixtures.rs"]
mod fixtures;

use std::time::Instant;

use resolvers::domain::validation::{decode_image, validate_image, UploadLimits};
use resolvers::domain::variants::{renditions, ImageSize};

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let limits = UploadLimits::default();
    let files = fixtures::photos()?;
    let sizes = [
        ImageSize::Thumb,
        ImageSize::Small,
        ImageSize::Medium,
        ImageSize::Original,
    ];
    let mut downloaded: Vec<Vec<f64>> = vec![Vec::new(); sizes.len()];
    println!(
        "{:<34} {:>10} {:>12} {:>14}",
        "photo", "bytes", "validate ms", "+variants ms"
    );
    for file in &files {
        let bytes = std::fs::read(file)?;
        let time = |f: &dyn Fn()| {
            median(
                (0..9)
                    .map(|_| {
                        let t = Instant::now();
                        f();
                        t.elapsed().as_secs_f64() * 1e3
                    })
                    .collect(),
            )
        };
        let validate = time(&|| {
            validate_image(&bytes, &limits).expect("a fixture photo is valid");
        });
        let prepare = time(&|| {
            let (facts, image) = decode_image(&bytes, &limits).expect("valid");
            renditions(&image, &facts).expect("renditions");
        });
        let (facts, image) = decode_image(&bytes, &limits).expect("valid");
        let made = renditions(&image, &facts)?;
        for (i, size) in sizes.iter().enumerate() {
            let served = made
                .variants
                .iter()
                .find(|v| v.facts.size == *size)
                .map_or(facts.byte_size, |v| v.facts.byte_size);
            downloaded[i].push(served as f64);
        }
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        println!("{name:<34} {:>10} {validate:>12.1} {prepare:>14.1}", bytes.len());
    }
    println!("\n{:<10} {:>16}", "size", "median bytes");
    for (size, samples) in sizes.iter().zip(downloaded) {
        println!("{:<10} {:>16.0}", size.as_str(), median(samples));
    }
    Ok(())
}
