//! The batch file `pawql scan` writes and `pawql results` reads: a JSON array, one entry per
//! file. It keeps ice-cat-wrangler's log fields (`batch_id`, `original_file_name`,
//! `file_image_hash`, `upload_time`, `epoch_timestamp`) beside pawql's own, so tools that read
//! those logs keep working; and since a scan's id is the SHA-256 of the bytes (ice-cat's
//! `img_fprint`), `pawql results` also reads ice-cat logs of files pawql has scanned.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchEntry {
    /// The path as the scan command found it.
    #[serde(default)]
    pub file: String,
    /// The scan to look up; null when the file was never submitted (see `error`).
    #[serde(default, rename = "scanId")]
    pub scan_id: Option<String>,
    /// Lower-case hex SHA-256 of the file's bytes (ice-cat's `file_image_hash`).
    pub file_image_hash: String,
    /// Why the file was not submitted (`INVALID_IMAGE: …`, `cannot read: …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, rename = "submittedAt", skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime<Utc>>,
    pub batch_id: String,
    pub original_file_name: String,
    /// `YYYY-MM-DD-HH`, as ice-cat wrote it.
    pub upload_time: String,
    pub epoch_timestamp: i64,
}

impl BatchEntry {
    /// The scan id to look up: ours, else the hash (ice-cat logs have no `scanId`).
    pub fn lookup_id(&self) -> Option<&str> {
        match (&self.scan_id, &self.error) {
            (Some(id), _) => Some(id),
            (None, None) => Some(&self.file_image_hash),
            (None, Some(_)) => None,
        }
    }

    /// The name to show: the path, or for ice-cat logs the original file name.
    pub fn display_name(&self) -> &str {
        if self.file.is_empty() {
            &self.original_file_name
        } else {
            &self.file
        }
    }
}

pub fn write(path: &Path, entries: &[BatchEntry]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // Written whole to a temporary file, then renamed: a batch file is never half there.
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(entries)?)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

pub fn read(path: &Path) -> anyhow::Result<Vec<BatchEntry>> {
    let text = std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| anyhow::anyhow!("{} is not a batch file: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_ice_cat_wrangler_log_and_looks_scans_up_by_the_hash() {
        let log = r#"[{
            "client_id": "stablecaps900",
            "batch_id": "batch-1744377772",
            "s3bucket_source": "cat-wrangler-source-ice1-dev",
            "s3_key": "0eaf/stablecaps900/batch-1744377772/2025-04-11-13/1744377772-debug.png",
            "original_file_name": "siberian.png",
            "upload_time": "2025-04-11-13",
            "file_image_hash": "0eaf1da24040970c6396ca59488ad7fa739ef7ab4ee1f757f180dade9adc43cf",
            "epoch_timestamp": 1744377772
        }]"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        std::fs::write(&path, log).unwrap();
        let entries = read(&path).unwrap();
        assert_eq!(entries[0].display_name(), "siberian.png");
        assert_eq!(
            entries[0].lookup_id(),
            Some("0eaf1da24040970c6396ca59488ad7fa739ef7ab4ee1f757f180dade9adc43cf")
        );
    }

    #[test]
    fn a_file_that_was_never_submitted_has_nothing_to_look_up() {
        let entry = BatchEntry {
            file: "x.jpg".into(),
            scan_id: None,
            file_image_hash: "ab".into(),
            error: Some("INVALID_IMAGE: not an image".into()),
            submitted_at: None,
            batch_id: "batch-1".into(),
            original_file_name: "x.jpg".into(),
            upload_time: "2026-01-01-00".into(),
            epoch_timestamp: 1,
        };
        assert_eq!(entry.lookup_id(), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/batch.json");
        write(&path, std::slice::from_ref(&entry)).unwrap();
        assert_eq!(read(&path).unwrap()[0].error, entry.error);
        assert!(!path.with_extension("json.partial").exists());
    }
}
