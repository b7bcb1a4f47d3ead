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
//!
//! Only URLs this store handed out are taken. They are signed (`domain/ticket.rs`) with a key
//! made once from the OS's CSPRNG and kept beside the staging directory in
//! `<data-dir>/upload-signing.key` (mode 0600): a restart keeps the URLs already handed out
//! working, and nobody who cannot read the data directory can make one.
//!
//! A staged file nobody completes is removed once it is older than the ticket lifetime (15
//! minutes after its PUT; a file that old is never read either). S3's staging prefix does the
//! same with a lifecycle rule, whose shortest period is a day; here nothing forces a day, and
//! a shorter one bounds what unfinished uploads hold on disk to what can be PUT in 15 minutes.
//! The sweep runs when the store opens (what a stopped server left) and on a staging write
//! at most once a minute (one directory listing per minute, however many PUTs arrive), so
//! there is no background task to own or stop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use resolvers::catalog::UPLOAD_TICKET_TTL;
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord, Sha256Hex};
use resolvers::domain::ticket::{SignedUpload, UploadSigner, UploadTicket, STAGING_PREFIX};
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::ports::{ImageStore, Staged, StagedUploads};
use resolvers::ApiResult;
use tracing::{instrument, warn};

/// How long a staged file is kept after its PUT (see the module header).
const KEEP_STAGED: Duration = UPLOAD_TICKET_TTL;
/// How often staging writes also sweep old staged files.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The signing key's file, beside the staging directory.
const SIGNING_KEY_FILE: &str = "upload-signing.key";

/// Image files under one directory, served by the local server at `<public_url>/images/<id>`.
pub struct FileImageStore {
    root: PathBuf,
    staging: PathBuf,
    scan_uploads: PathBuf,
    public_url: String,
    /// Signs the upload URLs this store hands out and checks the ones PUT to.
    signer: UploadSigner,
    /// When a staging write next sweeps old staged files.
    next_sweep: Mutex<Instant>,
}

impl FileImageStore {
    /// Images under `root`, staged uploads under `staging`, scan-only uploads under `scan_uploads`.
    pub fn open(root: &Path, staging: &Path, scan_uploads: &Path, public_url: &str) -> anyhow::Result<FileImageStore> {
        for dir in [root, staging, scan_uploads] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let signer = load_or_create_signer(&staging.with_file_name(SIGNING_KEY_FILE))?;
        sweep_staging(staging);
        Ok(FileImageStore {
            root: root.to_owned(),
            staging: staging.to_owned(),
            scan_uploads: scan_uploads.to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            signer,
            next_sweep: Mutex::new(Instant::now() + SWEEP_EVERY),
        })
    }

    /// Whether this staging write should sweep: at most once per [`SWEEP_EVERY`].
    fn sweep_due(&self) -> bool {
        let mut next = self.next_sweep.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if now < *next {
            return false;
        }
        *next = now + SWEEP_EVERY;
        true
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

// The embedded store is the whole of staging: it signs the URLs it hands out, and the local
// server's `PUT /uploads/{ticket}` checks and writes through it.
#[async_trait]
impl StagedUploads for FileImageStore {
    /// The local server's upload route, signed like S3's presigned PUT: for exactly
    /// `byte_size` bytes, until `ttl` from now.
    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn presign(&self, ticket: &UploadTicket, byte_size: u64, ttl: Duration) -> anyhow::Result<String> {
        let expires = chrono::Utc::now() + chrono::Duration::from_std(ttl).context("the ticket lifetime")?;
        let signed = self.signer.sign(ticket, byte_size, expires);
        Ok(format!("{}/uploads/{ticket}?{}", self.public_url, signed.query()))
    }

    fn takes_puts_here(&self) -> bool {
        true
    }

    fn verify(&self, upload: &SignedUpload) -> ApiResult<()> {
        self.signer.verify(upload, chrono::Utc::now())
    }

    /// Stores the body of a `PUT /uploads/<ticket>` (already checked by the server to be
    /// exactly the signed length): to a temporary file, renamed into place once complete.
    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn write(&self, ticket: &UploadTicket, bytes: Bytes) -> anyhow::Result<()> {
        if self.sweep_due() {
            let staging = self.staging.clone();
            tokio::task::spawn_blocking(move || sweep_staging(&staging))
                .await
                .context("sweep task panicked")?;
        }
        write_file(self.staged_path(ticket), bytes).await
    }

    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn read(&self, ticket: &UploadTicket, max_bytes: usize) -> anyhow::Result<Staged> {
        let path = self.staged_path(ticket);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Staged::Missing),
            Err(e) => return Err(e).context("reading a staged upload"),
        };
        // Past its keeping time it is as good as swept, whenever the sweep comes.
        if is_stale(&meta, SystemTime::now()) {
            remove_optional(&path).await?;
            return Ok(Staged::Missing);
        }
        let size = meta.len();
        if size > max_bytes as u64 {
            return Ok(Staged::TooLarge(size));
        }
        // A sweep may remove it between the two reads: then it is missing, as swept.
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Staged::Bytes(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Staged::Missing),
            Err(e) => Err(e).context("reading a staged upload"),
        }
    }

    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn delete(&self, ticket: &UploadTicket) -> anyhow::Result<()> {
        remove_optional(&self.staged_path(ticket)).await
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

    #[instrument(level = "debug", skip_all, fields(%sha256))]
    async fn put_scan_upload(&self, sha256: &Sha256Hex, _kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        write_file(self.scan_uploads.join(sha256.as_str()), bytes).await
    }

    #[instrument(level = "debug", skip_all, fields(%sha256))]
    async fn get_scan_upload(&self, sha256: &Sha256Hex) -> anyhow::Result<Option<Bytes>> {
        read_optional(&self.scan_uploads.join(sha256.as_str())).await
    }
}

/// Whether a staged file (or a temporary one left beside it) was last written longer ago than
/// it is kept. A file dated in the future (a clock set back) is kept until it is not.
fn is_stale(meta: &std::fs::Metadata, now: SystemTime) -> bool {
    meta.modified()
        .ok()
        .and_then(|written| now.duration_since(written).ok())
        .is_some_and(|age| age >= KEEP_STAGED)
}

/// Removes staged files older than [`KEEP_STAGED`] from `<staging>/<label>/`, temporary files
/// of writes that never finished included. Failures are logged: a sweep never fails a request.
fn sweep_staging(staging: &Path) {
    let now = SystemTime::now();
    let mut removed = 0usize;
    for label_dir in std::fs::read_dir(staging).into_iter().flatten().flatten() {
        if !label_dir.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        for entry in std::fs::read_dir(label_dir.path()).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .is_ok_and(|meta| meta.is_file() && is_stale(&meta, now));
            if !stale {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!(path = %entry.path().display(), error = %e, "could not sweep a staged upload"),
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "swept staged uploads older than the ticket lifetime");
    }
}

/// The upload signing key kept at `path`, made on first use. It is written to a private
/// temporary file and hard-linked into place, which fails if another opener got there first:
/// then that key is the one read, and both agree.
fn load_or_create_signer(path: &Path) -> anyhow::Result<UploadSigner> {
    let read = |path: &Path| -> anyhow::Result<UploadSigner> {
        let key = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        keep_private(path)?;
        UploadSigner::from_key(&key).with_context(|| format!("{} is not an upload signing key", path.display()))
    };
    if path.exists() {
        return read(path);
    }
    let signer = UploadSigner::generate()?;
    let (tmp, mut file) = tempfile_in(path.parent().unwrap_or(Path::new(".")))?;
    let written = private(&file)
        .and_then(|()| file.write_all(signer.key()))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(signer),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// Makes a file only its owner can read or write (before anything secret is written to it).
fn private(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Narrows a key file others can read (copied in by hand, say) back to its owner.
fn keep_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            warn!(path = %path.display(), mode = format!("{mode:o}"), "the upload signing key was readable by others; now 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
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
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // Owner-only from the first instant: the signing key is written through this too, and a
    // file others could open even briefly could be read through that handle later.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path)?;
    Ok((path, file))
}
