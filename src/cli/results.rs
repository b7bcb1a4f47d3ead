//! `pawql results <batch-file> [--json] [--wait SECS]`: the verdict for every file of a batch,
//! asked 100 scans a request (`scanResults`), and with `--wait` followed to the end on one
//! `scansUpdated` stream over Server-Sent Events instead of polling each scan.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use super::batch::{self, BatchEntry};
use super::Remote;
use futures_util::StreamExt;
use resolvers::schema::{MAX_SCAN_RESULTS, MAX_WATCHED_SCANS};

use crate::client::operations::{scan_results, scans_updated, ScanResults, ScansUpdated};

#[derive(Debug, Args)]
pub struct ResultsArgs {
    /// A batch file written by `pawql scan` (or an ice-cat-wrangler upload log).
    pub batch_file: PathBuf,
    /// Print a JSON array, one object per file, instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Wait up to this many seconds for scans still in progress (followed on one stream).
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
    let mut results: Vec<FileResult> = entries.iter().map(FileResult::of_entry).collect();
    // Where each scan's answer goes (files with the same bytes share one scan).
    let mut files_of: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if let Some(id) = entry.lookup_id() {
            files_of.entry(id.to_owned()).or_default().push(i);
        }
    }
    let ids: Vec<String> = files_of.keys().cloned().collect();
    // A request per 100 scans (1,000 files: 10 requests).
    for chunk in ids.chunks(MAX_SCAN_RESULTS) {
        let asked = scan_results::Variables {
            scan_ids: chunk.to_vec(),
        };
        match client.run::<ScanResults>(asked).await {
            Ok(data) => {
                for (id, scan) in chunk.iter().zip(data.scan_results) {
                    for &i in &files_of[id] {
                        match &scan {
                            Some(scan) => results[i].found(&scan.status, scan.is_cat, scan.cat_confidence, &scan.error),
                            None => results[i].unknown(),
                        }
                    }
                }
            }
            Err(e) => {
                for &i in chunk.iter().flat_map(|id| &files_of[id]) {
                    results[i].failed(&e.to_string());
                }
            }
        }
    }
    if args.wait > 0 {
        let open: Vec<String> = ids
            .iter()
            .filter(|id| files_of[*id].iter().any(|&i| !results[i].is_final()))
            .cloned()
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
        // Followed on one stream per 1,000 scans (Server-Sent Events: works on AWS too).
        for chunk in open.chunks(MAX_WATCHED_SCANS) {
            let asked = scans_updated::Variables {
                scan_ids: chunk.to_vec(),
            };
            let follow = async {
                let mut updates = Box::pin(client.subscribe::<ScansUpdated>(asked).await?);
                while let Some(update) = updates.next().await {
                    let scan = update?.scans_updated;
                    for &i in files_of.get(&scan.id).into_iter().flatten() {
                        results[i].found(&scan.status, scan.is_cat, scan.cat_confidence, &scan.error);
                    }
                }
                Ok::<_, crate::client::ClientError>(())
            };
            match tokio::time::timeout_at(deadline, follow).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("following the scans: {e}"),
                Err(_) => break,
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

impl FileResult {
    /// A file as the batch file has it, before the server is asked.
    fn of_entry(entry: &BatchEntry) -> FileResult {
        FileResult {
            file: entry.display_name().to_owned(),
            scan_id: entry.lookup_id().map(str::to_owned),
            status: "NOT_SUBMITTED".to_owned(),
            is_cat: None,
            cat_confidence: None,
            error: entry.error.clone(),
        }
    }

    /// The server's scan: `status` as the schema spells it (`SUCCEEDED`).
    fn found(
        &mut self,
        status: &impl Serialize,
        is_cat: Option<bool>,
        confidence: Option<f64>,
        error: &Option<String>,
    ) {
        self.status = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "UNKNOWN".to_owned());
        self.is_cat = is_cat;
        self.cat_confidence = confidence;
        self.error = error.clone();
    }

    fn unknown(&mut self) {
        self.status = "UNKNOWN".to_owned();
        self.error = Some("the server has no scan with this id".to_owned());
    }

    fn failed(&mut self, error: &str) {
        self.status = "ERROR".to_owned();
        self.error = Some(error.to_owned());
    }
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
