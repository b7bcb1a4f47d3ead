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
}
