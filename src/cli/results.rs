//! `pawql results <batch-file> [--json] [--wait SECS]`: the verdict for every file of a batch.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::batch::{self, BatchEntry};
use super::Remote;
use crate::client::operations::{scan_result, ScanResult};
use crate::client::PawqlClient;

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// A batch file written by `pawql scan` (or an ice-cat-wrangler upload log).
    pub batch_file: PathBuf,
    /// Print a JSON array, one object per file, instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Wait up to this many seconds for scans still in progress.
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
    #[command(flatten)]
    pub remote: Remote,
}

/// One file's outcome.
#[derive(Debug, Serialize)]
pub struct FileResult {
    pub file: String,
    #[serde(rename = "scanId")]
    pub scan_id: Option<String>,
    /// `PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`; `NOT_SUBMITTED` when the scan command could
    /// not submit the file; `UNKNOWN` when the server has no such scan; `ERROR` when asking failed.
    pub status: String,
    #[serde(rename = "isCat")]
    pub is_cat: Option<bool>,
    #[serde(rename = "catConfidence")]
    pub cat_confidence: Option<f64>,
    pub error: Option<String>,
}

impl FileResult {
    fn is_final(&self) -> bool {
        !matches!(self.status.as_str(), "PENDING" | "RUNNING")
    }
}

pub async fn results(args: ResultsArgs) -> anyhow::Result<()> {
    let client = args.remote.client()?;
    let entries = batch::read(&args.batch_file)?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut results = Vec::with_capacity(entries.len());
    for entry in &entries {
        results.push(look_up(&client, entry).await);
    }
    // Only the unfinished ones are asked again.
    while Instant::now() < deadline && results.iter().any(|r| !r.is_final()) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (entry, result) in entries.iter().zip(results.iter_mut()) {
            if !result.is_final() {
                *result = look_up(&client, entry).await;
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_table(&results);
    }
    Ok(())
}

async fn look_up(client: &PawqlClient, entry: &BatchEntry) -> FileResult {
    let mut result = FileResult {
        file: entry.display_name().to_owned(),
        scan_id: entry.lookup_id().map(str::to_owned),
        status: "NOT_SUBMITTED".to_owned(),
        is_cat: None,
        cat_confidence: None,
        error: entry.error.clone(),
    };
    let Some(id) = entry.lookup_id() else {
        return result;
    };
    match client
        .run::<ScanResult>(scan_result::Variables { scan_id: id.to_owned() })
        .await
    {
        Ok(data) => match data.scan_result {
            None => {
                result.status = "UNKNOWN".to_owned();
                result.error = Some("the server has no scan with this id".to_owned());
            }
            Some(scan) => {
                // The enum serialises as the schema spells it (`SUCCEEDED`).
                result.status = serde_json::to_value(&scan.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "UNKNOWN".to_owned());
                result.is_cat = scan.is_cat;
                result.cat_confidence = scan.cat_confidence;
                result.error = scan.error;
            }
        },
        Err(e) => {
            result.status = "ERROR".to_owned();
            result.error = Some(e.to_string());
        }
    }
    result
}

fn print_table(results: &[FileResult]) {
    let width = results.iter().map(|r| r.file.chars().count()).max().unwrap_or(4).max(4);
    println!(
        "{:width$}  {:13}  {:6}  {:>10}  ERROR",
        "FILE", "STATUS", "CAT", "CONFIDENCE"
    );
    for r in results {
        let cat = match r.is_cat {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let confidence = r.cat_confidence.map_or_else(|| "-".to_owned(), |c| format!("{c:.3}"));
        println!(
            "{:width$}  {:13}  {:6}  {:>10}  {}",
            r.file,
            r.status,
            cat,
            confidence,
            r.error.as_deref().unwrap_or("")
        );
    }
    let cats = results.iter().filter(|r| r.is_cat == Some(true)).count();
    let done = results.iter().filter(|r| r.status == "SUCCEEDED").count();
    println!("{} files: {done} scanned, {cats} with a cat", results.len());
}
