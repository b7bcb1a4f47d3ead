//! What a cat detector found: the verdict, its confidence, the labels behind it, and the
//! detector's raw output for debug data.

use serde::{Deserialize, Serialize};

/// One label a detector reported, with its confidence in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedLabel {
    pub name: String,
    pub confidence: f64,
}

/// A detector's answer for one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub is_cat: bool,
    /// The detector's confidence that there is a cat, in [0, 1] (also when `is_cat` is false).
    pub cat_confidence: f64,
    /// The most confident labels, best first.
    pub labels: Vec<DetectedLabel>,
    /// The detector's raw output, kept only as debug data.
    pub raw: serde_json::Value,
}

/// Why a detection failed. `retryable` failures (throttling, timeouts, a detector briefly
/// unavailable) are retried with backoff; the others fail the scan at once.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DetectError {
    /// A stable reason code, shown in `Scan.error`.
    pub code: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl DetectError {
    pub fn permanent(code: &'static str, message: impl Into<String>) -> DetectError {
        DetectError {
            code,
            message: message.into(),
            retryable: false,
        }
    }

    pub fn retryable(code: &'static str, message: impl Into<String>) -> DetectError {
        DetectError {
            code,
            message: message.into(),
            retryable: true,
        }
    }

    /// What anyone may read (`Scan.error`, `heldReason`): the code and a fixed explanation of
    /// it. The message stays in logs and in the scan's debug data (admin key): it can carry a
    /// detector's or AWS's own error text, with ARNs, account ids and internals.
    pub fn public(&self) -> String {
        let explanation = match self.code {
            "DETECTOR_UNAVAILABLE" => "the detector did not answer, and retries ran out",
            "DETECTOR_THROTTLED" => "the detector was busy, and retries ran out",
            "DETECTOR_CRASHED" => "the detector stopped unexpectedly",
            "DETECTOR_FAILED" => "the detector could not process the image",
            "DETECTOR_ACCESS_DENIED" => "the detector may not read the image (a deployment problem)",
            "UNREADABLE_IMAGE" => "the image could not be decoded for detection",
            "IMAGE_TOO_SMALL" => "the image is smaller than the detector's minimum (80 pixels a side)",
            "IMAGE_TOO_LARGE" => "the image is over the detector's limits",
            "TRANSCODE_FAILED" => "the image could not be converted for the detector",
            "IMAGE_MISSING" => "the scanned bytes are gone",
            "STORAGE_FAILED" => "the image could not be read from storage",
            "GAVE_UP" => "every worker that took this scan stopped before finishing it",
            _ => "the scan failed",
        };
        format!("{}: {explanation}", self.code)
    }
}
