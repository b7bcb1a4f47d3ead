//! Scans: "does this image contain a cat?", asked once per image content.
//!
//! A scan is keyed by the SHA-256 of the bytes, so the same content is never scanned twice
//! (whatever its label, or whether it was uploaded only to be scanned) unless `force` is
//! asked. Its life: `PENDING` (recorded, returned at once) → `RUNNING` (a worker claimed it)
//! → `SUCCEEDED` or `FAILED` (with a reason code). Every transition is conditional on the
//! state before it, so two workers cannot both run one scan, and a crash leaves a state a
//! restart can pick up.

use chrono::{DateTime, Utc};

use super::failure::ScanFailure;
use serde::{Deserialize, Serialize};

use super::detection::DetectedLabel;
use super::image::{ImageId, Sha256Hex};

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
    Image { id: ImageId },
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
    pub id: Sha256Hex,
    pub status: ScanStatus,
    pub source: ScanSource,
    /// Keep debug data for this scan.
    pub debug_requested: bool,
    pub detector: Option<String>,
    pub verdict: Option<ScanVerdict>,
    /// Why it failed (stored, and shown in `Scan.error`, as `CODE: explanation`).
    pub error: Option<ScanFailure>,
    pub attempts: u32,
    pub requested_at: DateTime<Utc>,
    /// When the latest claim took it (`RUNNING` since then, unless final).
    #[serde(default)]
    pub claimed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Scans of bytes uploaded only for scanning expire (and their bytes with them).
    pub expires_at: Option<DateTime<Utc>>,
    pub debug: Option<ScanDebug>,
}

impl ScanRecord {
    /// A new scan request.
    pub fn pending(id: Sha256Hex, source: ScanSource, debug_requested: bool, now: DateTime<Utc>) -> ScanRecord {
        let expires_at = matches!(source, ScanSource::Upload { .. }).then(|| now + SCAN_UPLOAD_TTL);
        ScanRecord {
            id,
            status: ScanStatus::Pending,
            source,
            debug_requested,
            detector: None,
            verdict: None,
            error: None,
            attempts: 0,
            requested_at: now,
            claimed_at: None,
            finished_at: None,
            expires_at,
            debug: None,
        }
    }
}

impl ScanRecord {
    /// The record as a worker claims it: `RUNNING`, one more attempt, claimed `now`.
    pub fn claimed(mut self, now: DateTime<Utc>) -> ScanRecord {
        self.status = ScanStatus::Running;
        self.attempts += 1;
        self.claimed_at = Some(now);
        self
    }

    /// Not final and untouched for `after`: requested that long ago and never claimed, or
    /// claimed that long ago and never finished. Such a scan's worker is gone (or it was
    /// never delivered to one), and a sweep may take it over.
    pub fn is_stale(&self, now: DateTime<Utc>, after: chrono::Duration) -> bool {
        self.touched_at().is_some_and(|since| now - since >= after)
    }

    /// When an unfinished scan was last touched (requested, or claimed); `None` when final.
    pub fn touched_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            ScanStatus::Pending => Some(self.requested_at),
            ScanStatus::Running => Some(self.claimed_at.unwrap_or(self.requested_at)),
            ScanStatus::Succeeded | ScanStatus::Failed => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::label::LabelSet;

    fn cat_image(bytes: &[u8]) -> ImageId {
        let cat = LabelSet::default_pets().parse("cat").unwrap();
        ImageId::new(cat, Sha256Hex::of(bytes))
    }

    #[test]
    fn a_scan_is_stale_once_untouched_for_the_given_time() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap().to_utc();
        let minutes = chrono::Duration::minutes;
        let id = cat_image(b"x");
        let pending = ScanRecord::pending(id.sha256.clone(), ScanSource::Image { id }, false, t0);
        assert!(!pending.is_stale(t0 + minutes(14), minutes(15)));
        assert!(pending.is_stale(t0 + minutes(15), minutes(15)));
        // Claimed late: counted from the claim, not the request.
        let running = pending.clone().claimed(t0 + minutes(20));
        assert_eq!((running.status, running.attempts), (ScanStatus::Running, 1));
        assert!(!running.is_stale(t0 + minutes(30), minutes(15)));
        assert!(running.is_stale(t0 + minutes(35), minutes(15)));
        let mut done = running;
        done.status = ScanStatus::Succeeded;
        assert!(!done.is_stale(t0 + minutes(600), minutes(15)), "final scans never are");
    }

    #[test]
    fn stored_scans_keep_their_ids_as_text_and_refuse_malformed_ones() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap().to_utc();
        let id = cat_image(b"x");
        let sha = id.sha256.clone();
        let record = ScanRecord::pending(sha.clone(), ScanSource::Image { id: id.clone() }, false, t0);
        let json = serde_json::to_value(&record).unwrap();
        // The stored form is unchanged by typing the ids: plain strings, as before.
        assert_eq!(json["id"], sha.as_str());
        assert_eq!(
            json["source"],
            serde_json::json!({"kind": "image", "id": format!("cat-{sha}")})
        );
        assert_eq!(serde_json::from_value::<ScanRecord>(json.clone()).unwrap(), record);
        for (field, bad) in [
            ("id", serde_json::json!("abc")),
            ("id", serde_json::json!(sha.as_str().to_uppercase())),
        ] {
            let mut broken = json.clone();
            broken[field] = bad;
            assert!(serde_json::from_value::<ScanRecord>(broken).is_err());
        }
        for bad in [
            "cat",
            "cat-abc",
            &format!("Cat-{sha}"),
            &format!("-{sha}"),
            &format!("../x-{sha}"),
        ] {
            let mut broken = json.clone();
            broken["source"]["id"] = serde_json::json!(bad);
            assert!(serde_json::from_value::<ScanRecord>(broken).is_err(), "{bad}");
        }
    }
}
