//! Which files a bulk command takes from a folder.

use std::path::{Path, PathBuf};

/// The extensions of the formats pawql accepts. The server decides by the bytes; this only
/// keeps READMEs, `.DS_Store` and the like out of a bulk run.
const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// Image files under `folder` (recursively), sorted, and how many other files were skipped.
pub fn images_in(folder: &Path) -> anyhow::Result<(Vec<PathBuf>, usize)> {
    if !folder.is_dir() {
        anyhow::bail!("{} is not a folder", folder.display());
    }
    let (mut images, mut skipped) = (Vec::new(), 0);
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if is_image_name(&path) {
                images.push(path);
            } else {
                skipped += 1;
            }
        }
    }
    images.sort();
    Ok((images, skipped))
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The name a server sees for `path` (its file name).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_images_by_extension_in_any_case_recursively_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.JPG",
            "a.png",
            "notes.txt",
            "sub/c.webp",
            "sub/d.jpeg",
            "sub/.DS_Store",
        ] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        let (images, skipped) = images_in(dir.path()).unwrap();
        let names: Vec<String> = images
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.png", "b.JPG", "sub/c.webp", "sub/d.jpeg"]);
        assert_eq!(skipped, 2);
        assert!(images_in(&dir.path().join("a.png")).is_err(), "a file is not a folder");
    }
}
