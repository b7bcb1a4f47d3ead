//! `pawql scan <folder> [--batch-file PATH]`: submits every image in a folder for scanning,
//! a bounded number at a time, with a progress bar, and writes the batch file that
//! `pawql results` reads. The bytes are scanned, not added to the catalogue. A file that fails
//! is recorded with its error; the others go on.

use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::Args;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::batch::{self, BatchEntry};
use super::files::{file_name, images_in};
use super::{exit_status, Remote};
use crate::client::operations::{scan_file, ScanFile};
use crate::client::{Attachment, PawqlClient};

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The folder (searched recursively for .jpg, .jpeg, .png and .webp files).
    pub folder: PathBuf,
    /// Where to write the batch file (default `pawql-batch-<epoch>.json` here).
    #[arg(long)]
    pub batch_file: Option<PathBuf>,
    /// How many files are in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    #[command(flatten)]
    pub remote: Remote,
}

pub async fn scan(args: ScanArgs) -> anyhow::Result<()> {
    let client = args.remote.client()?;
    let (files, skipped) = images_in(&args.folder)?;
    if skipped > 0 {
        eprintln!("skipping {skipped} files that are not .jpg, .jpeg, .png or .webp");
    }
    let started = Utc::now();
    let batch_id = format!("batch-{}", started.timestamp());
    let batch_path = args
        .batch_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("pawql-{batch_id}.json")));

    let progress = ProgressBar::new(files.len() as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {elapsed} {wide_msg}").expect("a valid template"),
    );
    let mut entries: Vec<(usize, BatchEntry)> = futures_util::stream::iter(files.iter().enumerate())
        .map(|(n, path)| {
            let (client, batch_id, progress) = (&client, &batch_id, &progress);
            async move {
                let entry = submit(client, path, batch_id).await;
                progress.set_message(file_name(path));
                progress.inc(1);
                if let Some(error) = &entry.error {
                    progress.suspend(|| eprintln!("{}\tFAILED\t{error}", path.display()));
                }
                (n, entry)
            }
        })
        .buffer_unordered(usize::from(args.parallel))
        .collect()
        .await;
    progress.finish_and_clear();
    entries.sort_by_key(|(n, _)| *n);
    let entries: Vec<BatchEntry> = entries.into_iter().map(|(_, e)| e).collect();
    batch::write(&batch_path, &entries)?;

    let failed = entries.iter().filter(|e| e.error.is_some()).count();
    println!(
        "submitted {} of {} files; batch file {}\nresults: pawql results {}",
        entries.len() - failed,
        entries.len(),
        batch_path.display(),
        batch_path.display()
    );
    exit_status(failed, entries.len())
}

/// Reads, hashes and submits one file; every failure ends up in the entry, never aborts.
async fn submit(client: &PawqlClient, path: &Path, batch_id: &str) -> BatchEntry {
    let now = Utc::now();
    let mut entry = BatchEntry {
        file: path.display().to_string(),
        scan_id: None,
        file_image_hash: String::new(),
        error: None,
        submitted_at: None,
        batch_id: batch_id.to_owned(),
        original_file_name: file_name(path),
        upload_time: now.format("%Y-%m-%d-%H").to_string(),
        epoch_timestamp: now.timestamp(),
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            entry.error = Some(format!("cannot read: {e}"));
            return entry;
        }
    };
    entry.file_image_hash = hex::encode(Sha256::digest(&bytes));
    let attachment = Attachment {
        file_name: file_name(path),
        bytes,
    };
    match client
        .run_with_file::<ScanFile>(scan_file::Variables { image: () }, &attachment)
        .await
    {
        Ok(data) => {
            entry.scan_id = Some(data.request_scan.id);
            entry.submitted_at = Some(Utc::now());
        }
        Err(e) => entry.error = Some(e.to_string()),
    }
    entry
}
