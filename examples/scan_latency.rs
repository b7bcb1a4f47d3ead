//! Scan latency of the offline detector per image: decode + preprocess + inference, on one
//! thread, for every fixture photo. Figures go to BENCHMARKS.md.
//!
//!     cargo run --release --example scan_latency [rounds]

use std::time::Instant;

use pawql::detectors::offline::{OfflineDetector, DEFAULT_CAT_THRESHOLD};

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map(|r| r.parse()).transpose()?.unwrap_or(20);
    let started = Instant::now();
    let detector = OfflineDetector::load(DEFAULT_CAT_THRESHOLD)?;
    println!("model load + optimise: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg" | "webp")));
    files.sort();
    let mut all = Vec::new();
    println!("{:<34} {:>10} {:>10} {:>8}", "image", "median ms", "p95 ms", "P(cat)");
    for file in files {
        let bytes = std::fs::read(&file)?;
        let mut times = Vec::with_capacity(rounds);
        let mut confidence = 0.0;
        for _ in 0..rounds {
            let t = Instant::now();
            confidence = detector.classify(&bytes)?.cat_confidence;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
        all.extend(times);
        let name = file.file_name().unwrap().to_string_lossy();
        println!("{name:<34} {median:>10.1} {p95:>10.1} {confidence:>8.4}");
    }
    all.sort_by(f64::total_cmp);
    println!(
        "all images: median {:.1} ms over {} scans",
        all[all.len() / 2],
        all.len()
    );
    Ok(())
}
