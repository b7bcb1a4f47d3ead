//! What a cat detector found: the verdict, its confidence, the labels behind it, and the
//! detector's raw output for debug data.

use serde::{Deserialize, Serialize};

pub use super::failure::ScanFailure;

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

/// Why a detection failed: which failure ([`ScanFailure`]: its code, public text and whether
/// it is retried), and the detector's own message, for logs and debug data only.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", failure.code())]
pub struct DetectError {
    pub failure: ScanFailure,
    pub message: String,
}

impl DetectError {
    pub fn new(failure: ScanFailure, message: impl Into<String>) -> DetectError {
        DetectError {
            failure,
            message: message.into(),
        }
    }

    /// Whether the scanner tries again (with backoff) rather than failing the scan at once.
    pub fn retryable(&self) -> bool {
        self.failure.retryable()
    }
}
