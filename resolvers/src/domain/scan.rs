//! Scans: "does this image contain a cat?", asked once per image content.
//!
//! A scan is keyed by the SHA-256 of the bytes, so the same content is never scanned twice
//! (whatever its label, or whether it was uploaded only to be scanned) unless `force` is
//! asked. Its life: `PENDING` (recorded, returned at once) → `RUNNING` (a worker claimed it)
//! → `SUCCEEDED` or `FAILED` (with a reason code). Every transition is conditional on the
//! state before it, so two workers cannot both run one scan, and a crash leaves a state a
//! restart can pick up.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::detection::DetectedLabel;
use super::image::Sha256Hex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl ScanStatus {
    /// No further change will come.
    pub fn is_final(self) -> bool {
        matches!(self, ScanStatus::Succeeded | ScanStatus::Failed)
    }
}

/// Where the scanned bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ScanSource {
    /// An image of the catalogue.
    Image { id: String },
    /// Bytes uploaded only to be scanned, kept under the scan's own key until the scan expires.
    Upload { content_type: String },
}

/// What a finished scan found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanVerdict {
    pub is_cat: bool,
    pub cat_confidence: f64,
    pub labels: Vec<DetectedLabel>,
}

/// Debug data of a scan: the detector's raw output, per-step timings and the scan's own log
/// lines. Shown only to a caller with the admin key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanDebug {
    pub raw: Option<serde_json::Value>,
    /// (step, milliseconds), in order.
    pub timings: Vec<(String, f64)>,
    pub log: Vec<String>,
}

/// The scan record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanRecord {
    /// The SHA-256 of the scanned bytes (lowercase hex): the scan's id.
    pub id: String,
    pub status: ScanStatus,
    pub source: ScanSource,
    /// Keep debug data for this scan.
    pub debug_requested: bool,
    pub detector: Option<String>,
    pub verdict: Option<ScanVerdict>,
    /// Reason code of a failure (`DETECTOR_FAILED`, `IMAGE_MISSING`, …) and its message.
    pub error: Option<String>,
    pub attempts: u32,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Scans of bytes uploaded only for scanning expire (and their bytes with them).
    pub expires_at: Option<DateTime<Utc>>,
    pub debug: Option<ScanDebug>,
}

impl ScanRecord {
    pub fn pending(id: Sha256Hex, source: ScanSource, debug_requested: bool, now: DateTime<Utc>) -> ScanRecord {
        let expires_at = matches!(source, ScanSource::Upload { .. }).then(|| now + SCAN_UPLOAD_TTL);
        ScanRecord {
            id: id.as_str().to_owned(),
            status: ScanStatus::Pending,
            source,
            debug_requested,
            detector: None,
            verdict: None,
            error: None,
            attempts: 0,
            requested_at: now,
            finished_at: None,
            expires_at,
            debug: None,
        }
    }
}

/// How long scans of scan-only uploads (and those bytes) are kept.
pub const SCAN_UPLOAD_TTL: chrono::Duration = chrono::Duration::days(7);

/// Outcome of recording a scan request.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanRequested {
    /// A new pending scan: the caller must get it worked on.
    New(ScanRecord),
    /// A scan of these bytes already exists (pending, running or final); nothing changed.
    Existing(ScanRecord),
}
