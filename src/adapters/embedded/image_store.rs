//! Image bytes as files: `<data-dir>/images/<first two hex digits>/<sha256>-<label>`, and
//! their sized variants under `<data-dir>/images/variants/`.
//!
//! Writes go to a temporary file that is synced and then renamed into place, so a crash
//! never leaves a half-written image under a real name. The content type lives in the
//! image row; the file holds only the bytes.
//!
//! Presigned uploads are staged under `<data-dir>/staging/<label>/<token>`: the local server's
//! `PUT /uploads/<ticket>` writes there (the stand-in for S3's presigned PUT), and
//! `completeUpload` reads and removes the file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord, Sha256Hex};
use resolvers::domain::ticket::{UploadTicket, STAGING_PREFIX};
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::ports::{ImageStore, Staged, UploadStaging};
use tracing::instrument;

/// Image files under one directory, served by the local server at `<public_url>/images/<id>`.
pub struct FileImageStore {
    root: PathBuf,
    staging: PathBuf,
    scan_uploads: PathBuf,
    public_url: String,
}

impl FileImageStore {
    /// Images under `root`, staged uploads under `staging`, scan-only uploads under `scan_uploads`.
    pub fn open(root: &Path, staging: &Path, scan_uploads: &Path, public_url: &str) -> anyhow::Result<FileImageStore> {
        for dir in [root, staging, scan_uploads] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(FileImageStore {
            root: root.to_owned(),
            staging: staging.to_owned(),
            scan_uploads: scan_uploads.to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The staged file of a ticket. Tickets are validated (label, 32 hex digits), so the path
    /// cannot leave the staging directory.
    fn staged_path(&self, ticket: &UploadTicket) -> PathBuf {
        let key = ticket.staging_key();
        self.staging.join(key.trim_start_matches(STAGING_PREFIX))
    }

    /// The file of an image. Ids are validated (`[a-z0-9_]` label, hex hash), so the path
    /// cannot leave the root.
    fn path_of(&self, id: &ImageId) -> PathBuf {
        let hash = id.sha256.as_str();
        self.root.join(&hash[..2]).join(format!("{hash}-{}", id.label))
    }

    /// The file of a sized variant: `<root>/variants/<first two hex digits>/<sha256>-<label>-<size>`.
    fn variant_path(&self, id: &ImageId, size: ImageSize) -> PathBuf {
        let hash = id.sha256.as_str();
        self.root
            .join("variants")
            .join(&hash[..2])
            .join(format!("{hash}-{}-{}", id.label, size.as_str()))
    }
}

#[async_trait]
impl UploadStaging for FileImageStore {
    /// Stores the body of a `PUT /uploads/<ticket>` (already size-checked by the server).
    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn write_staged(&self, ticket: &UploadTicket, bytes: Bytes) -> anyhow::Result<()> {
        write_file(self.staged_path(ticket), bytes).await
    }
}

#[async_trait]
impl ImageStore for FileImageStore {
    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn put(&self, id: &ImageId, _kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        write_file(self.path_of(id), bytes).await
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn get(&self, id: &ImageId) -> anyhow::Result<Option<Bytes>> {
        read_optional(&self.path_of(id)).await
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn delete(&self, id: &ImageId) -> anyhow::Result<()> {
        remove_optional(&self.path_of(id)).await?;
        for size in ImageSize::VARIANTS {
            remove_optional(&self.variant_path(id, size)).await?;
        }
        Ok(())
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn put_variant(&self, id: &ImageId, variant: &VariantFacts, bytes: Bytes) -> anyhow::Result<()> {
        write_file(self.variant_path(id, variant.size), bytes).await
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn get_variant(&self, id: &ImageId, size: ImageSize) -> anyhow::Result<Option<Bytes>> {
        read_optional(&self.variant_path(id, size)).await
    }

    /// `/images/<id>`, and `?size=<size>` for a variant: the same URL for the same bytes and size.
    #[instrument(level = "debug", skip_all)]
    async fn url(&self, image: &ImageRecord, variant: Option<&VariantFacts>) -> anyhow::Result<String> {
        Ok(match variant {
            Some(variant) => format!("{}/images/{}?size={}", self.public_url, image.id, variant.size.as_str()),
            None => format!("{}/images/{}", self.public_url, image.id),
        })
    }

    /// The local server's upload route. It does not expire: the local server is a
    /// single-user development tool on loopback; S3's presigned PUT is what expires.
    /// The local PUT route caps what it takes at the upload limit while it streams.
    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn presign_upload(&self, ticket: &UploadTicket, _byte_size: u64, _ttl: Duration) -> anyhow::Result<String> {
        Ok(format!("{}/uploads/{ticket}", self.public_url))
    }

    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn read_staged(&self, ticket: &UploadTicket, max_bytes: usize) -> anyhow::Result<Staged> {
        let path = self.staged_path(ticket);
        let size = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Staged::Missing),
            Err(e) => return Err(e).context("reading a staged upload"),
        };
        if size > max_bytes as u64 {
            return Ok(Staged::TooLarge(size));
        }
        let bytes = tokio::fs::read(&path).await.context("reading a staged upload")?;
        Ok(Staged::Bytes(Bytes::from(bytes)))
    }

    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn delete_staged(&self, ticket: &UploadTicket) -> anyhow::Result<()> {
        remove_optional(&self.staged_path(ticket)).await
    }

    #[instrument(level = "debug", skip_all, fields(%sha256))]
    async fn put_scan_upload(&self, sha256: &Sha256Hex, _kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        write_file(self.scan_uploads.join(sha256.as_str()), bytes).await
    }

    #[instrument(level = "debug", skip_all, fields(%sha256))]
    async fn get_scan_upload(&self, sha256: &Sha256Hex) -> anyhow::Result<Option<Bytes>> {
        read_optional(&self.scan_uploads.join(sha256.as_str())).await
    }
}

/// Writes a file atomically, off the async runtime.
async fn write_file(path: PathBuf, bytes: Bytes) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
        .await
        .context("write task panicked")?
}

/// A file's bytes, or `None` when it does not exist.
async fn read_optional(path: &Path) -> anyhow::Result<Option<Bytes>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(Bytes::from(bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Removes a file; a missing one is not an error.
async fn remove_optional(path: &Path) -> anyhow::Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
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
