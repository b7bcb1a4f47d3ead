//! What the benchmark examples measure on: the fixture photos (`tests/fixtures/images`), in
//! name order.

use std::path::PathBuf;

/// Every JPEG, PNG and WebP fixture photo.
pub fn photos() -> anyhow::Result<Vec<PathBuf>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "jpg" | "webp")));
    files.sort();
    Ok(files)
}
