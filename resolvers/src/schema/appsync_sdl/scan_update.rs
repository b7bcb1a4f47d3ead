//! What `publishScanUpdate` carries (`ScanUpdateInput` in `schema.appsync.graphql`), made from
//! a scan, and the bound that keeps it inside AppSync's 240 KB subscription payload.
//!
//! AppSync drops a subscription message over 240 KB. A scan's fields are small and fixed but
//! for its texts (label names, the detector's name, the failure) and its labels. The detectors
//! keep their 5 most confident labels and write short texts, so a real update is well under
//! 2 KB; [`scan_update`] still caps them ([`LIMITS`]), so the bound holds whatever a detector
//! or a hand-edited row holds: at most [`MAX_PAYLOAD_BYTES`], every text at its cap and every
//! character escaped at JSON's worst (six bytes, `\u0000`). The test below builds that update.

use serde_json::{json, Value};

use crate::domain::scan::ScanRecord;

/// How much of a scan one update carries.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Labels, most confident first (the detectors keep 5).
    pub labels: usize,
    /// Characters of each text: a label's name, the detector, the failure.
    pub text_chars: usize,
}

/// The caps [`scan_update`] applies.
pub const LIMITS: Limits = Limits {
    labels: 10,
    text_chars: 512,
};

/// The largest update [`scan_update`] can make, in bytes of JSON (the test proves it);
/// AppSync's limit is 240 KB.
pub const MAX_PAYLOAD_BYTES: usize = 48 * 1024;

/// AppSync's limit on a subscription message.
pub const APPSYNC_SUBSCRIPTION_LIMIT: usize = 240 * 1024;

/// The `update` argument of `publishScanUpdate` for `scan`: its `ScanUpdateInput`, in the
/// field names and formats the API answers `Scan` with (status as the enum's name, times as
/// RFC 3339), texts and labels capped at [`LIMITS`].
pub fn scan_update(scan: &ScanRecord) -> Value {
    let verdict = scan.verdict.as_ref();
    let labels: Vec<Value> = verdict
        .iter()
        .flat_map(|v| &v.labels)
        .take(LIMITS.labels)
        .map(|label| json!({ "name": capped(&label.name), "confidence": label.confidence }))
        .collect();
    json!({
        "id": scan.id.to_string(),
        "status": scan.status,
        "isCat": verdict.map(|v| v.is_cat),
        "catConfidence": verdict.map(|v| v.cat_confidence),
        "labels": labels,
        "detector": scan.detector.as_deref().map(capped),
        "requestedAt": scan.requested_at.to_rfc3339(),
        "finishedAt": scan.finished_at.map(|t| t.to_rfc3339()),
        "error": scan.error.as_ref().map(|failure| capped(&failure.public())),
        "attempts": scan.attempts,
    })
}

/// `text` cut to [`LIMITS`]' characters (never mid-character).
fn capped(text: &str) -> String {
    text.chars().take(LIMITS.text_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::detection::DetectedLabel;
    use crate::domain::failure::ScanFailure;
    use crate::domain::scan::{ScanSource, ScanStatus, ScanVerdict};

    fn scan_with(text: &str, labels: usize) -> ScanRecord {
        let id = crate::domain::image::Sha256Hex::parse(&"a".repeat(64)).expect("64 hex digits");
        let source = ScanSource::Upload {
            content_type: "image/png".into(),
        };
        let requested = "2025-01-01T00:00:00Z".parse().expect("a time");
        let mut scan = ScanRecord::pending(id, source, false, requested);
        scan.attempts = u32::MAX;
        scan.status = ScanStatus::Failed;
        scan.detector = Some(text.to_owned());
        scan.error = Some(ScanFailure::Unrecognised(text.to_owned()));
        scan.finished_at = Some(scan.requested_at);
        scan.verdict = Some(ScanVerdict {
            is_cat: true,
            cat_confidence: f64::MIN_POSITIVE,
            labels: (0..labels)
                .map(|_| DetectedLabel {
                    name: text.to_owned(),
                    confidence: f64::MIN_POSITIVE,
                })
                .collect(),
        });
        scan
    }

    #[test]
    fn the_largest_update_stays_under_its_bound_and_appsyncs_limit() {
        // Every text far past its cap, every character one JSON escapes to six bytes.
        let worst = scan_with(&"\u{1}".repeat(LIMITS.text_chars * 4), LIMITS.labels * 3);
        let bytes = serde_json::to_vec(&scan_update(&worst)).unwrap().len();
        assert!(bytes <= MAX_PAYLOAD_BYTES, "{bytes} bytes");
        assert!(
            bytes > MAX_PAYLOAD_BYTES / 2,
            "the bound is tight enough to mean something: {bytes}"
        );
        const { assert!(MAX_PAYLOAD_BYTES < APPSYNC_SUBSCRIPTION_LIMIT) };
    }

    #[test]
    fn an_update_carries_the_scan_as_the_api_answers_it() {
        let scan = scan_with("rekognition", 2);
        let update = scan_update(&scan);
        assert_eq!(update["status"], "FAILED");
        assert_eq!(update["id"], "a".repeat(64));
        assert_eq!(update["labels"].as_array().unwrap().len(), 2);
        assert_eq!(update["error"], "rekognition");
        assert_eq!(update["requestedAt"], "2025-01-01T00:00:00+00:00");
        assert_eq!(update["isCat"], true);
    }

    #[test]
    fn texts_are_cut_on_characters() {
        let scan = scan_with(&"é".repeat(LIMITS.text_chars + 5), 1);
        let update = scan_update(&scan);
        assert_eq!(update["detector"].as_str().unwrap().chars().count(), LIMITS.text_chars);
    }
}
