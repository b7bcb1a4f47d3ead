//! Scan latency of the offline detector per image: decode + preprocess + inference, on one
//! thread, for every fixture photo. Figures go to BENCHMARKS.md.
//!
//!     cargo run --release --example scan_latency [rounds]
//!
//! Then bulk throughput: all photos `rounds` times on one thread, then one thread per core.

use std::time::Instant;

use pawql::detectors::offline::{OfflineDetector, DEFAULT_CAT_THRESHOLD};

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map(|r| r.parse()).transpose()?.unwrap_or(20);
    let started = Instant::now();
    let detector = OfflineDetector::load(DEFAULT_CAT_THRESHOLD)?;
    println!("model load + optimise: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    let photos = photos_in(&dir)?;
    let mut all = Vec::new();
    println!("{:<34} {:>10} {:>10} {:>8}", "image", "median ms", "p95 ms", "P(cat)");
    for (name, bytes) in &photos {
        let mut times = Vec::with_capacity(rounds);
        let mut confidence = 0.0;
        for _ in 0..rounds {
            let t = Instant::now();
            confidence = detector.classify(bytes)?.cat_confidence;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
        all.extend(times);
        println!("{name:<34} {median:>10.1} {p95:>10.1} {confidence:>8.4}");
    }
    all.sort_by(f64::total_cmp);
    println!(
        "all images: median {:.1} ms over {} scans",
        all[all.len() / 2],
        all.len()
    );

    // Bulk throughput: every photo `rounds` times, spread over 1 thread, then one per core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores] {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for worker in 0..threads {
                let (detector, photos) = (&detector, &photos);
                scope.spawn(move || {
                    for round in 0..rounds {
                        for (n, (_, bytes)) in photos.iter().enumerate() {
                            if (round * photos.len() + n) % threads == worker {
                                detector.classify(bytes).expect("a fixture photo classifies");
                            }
                        }
                    }
                });
            }
        });
        let scans = rounds * photos.len();
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "bulk, {threads} thread(s): {scans} scans in {seconds:.2} s = {:.1} scans/s",
            scans as f64 / seconds
        );
    }
    Ok(())
}

/// The fixture photos, by name, sorted.
fn photos_in(dir: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg" | "webp")));
    files.sort();
    files
        .iter()
        .map(|f| Ok((f.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(f)?)))
        .collect()
}
