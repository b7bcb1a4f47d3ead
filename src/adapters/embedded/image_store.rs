//! Image bytes as files: `<data-dir>/images/<first two hex digits>/<sha256>-<label>`.
//!
//! Writes go to a temporary file that is synced and then renamed into place, so a crash
//! never leaves a half-written image under a real name. The content type lives in the
//! image row; the file holds only the bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord};
use resolvers::ports::ImageStore;

/// Image files under one directory, served by the local server at `<public_url>/images/<id>`.
pub struct FileImageStore {
    root: PathBuf,
    public_url: String,
}

impl FileImageStore {
    pub fn open(root: &Path, public_url: &str) -> anyhow::Result<FileImageStore> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        Ok(FileImageStore {
            root: root.to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The file of an image. Ids are validated (`[a-z0-9_]` label, hex hash), so the path
    /// cannot leave the root.
    fn path_of(&self, id: &ImageId) -> PathBuf {
        let hash = id.sha256.as_str();
        self.root.join(&hash[..2]).join(format!("{hash}-{}", id.label))
    }
}

#[async_trait]
impl ImageStore for FileImageStore {
    async fn put(&self, id: &ImageId, _kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        let path = self.path_of(id);
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .context("write task panicked")?
    }

    async fn get(&self, id: &ImageId) -> anyhow::Result<Option<Bytes>> {
        match tokio::fs::read(self.path_of(id)).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("reading an image file"),
        }
    }

    async fn delete(&self, id: &ImageId) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path_of(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("removing an image file"),
        }
    }

    async fn url(&self, image: &ImageRecord) -> anyhow::Result<String> {
        Ok(format!("{}/images/{}", self.public_url, image.id))
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().expect("image paths have a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (tmp_path, mut file) = tempfile_in(dir)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp_path, path));
    if let Err(e) = written {
        // Leave nothing behind: a failed write must not strand a temporary file.
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

/// A uniquely named temporary file beside the target (same filesystem, so rename is atomic).
fn tempfile_in(dir: &Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}
