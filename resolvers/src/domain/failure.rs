//! Why a scan failed, as a type: a stable code, the explanation anyone may read, and whether
//! trying again may help. Detectors say which failure they met ([`DetectError`] carries one),
//! the scanner decides on `retryable` whether to try again, a failed scan keeps it
//! (`ScanRecord.error`), and a held image names it (`Hold::ScanFailed`).
//!
//! What clients read and stores keep is [`ScanFailure::public`], `CODE: explanation`, exactly
//! as before the type existed (the test below pins every one), so stored scans and holds read
//! back as the same failures. Text that is no failure this version knows (written by hand, or
//! by another version) is kept verbatim as [`ScanFailure::Unrecognised`].
//!
//! [`DetectError`]: super::detection::DetectError

use std::fmt;

/// Why a scan failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanFailure {
    DetectorUnavailable,
    DetectorThrottled,
    DetectorTimeout,
    DetectorCrashed,
    DetectorFailed,
    DetectorAccessDenied,
    UnreadableImage,
    ImageTooSmall,
    ImageTooLarge,
    TranscodeFailed,
    ImageMissing,
    StorageFailed,
    /// Claimed more times than allowed without finishing: every worker stopped mid-scan.
    GaveUp,
    /// Stored text this version does not know, kept as it was.
    Unrecognised(String),
}

impl ScanFailure {
    /// Every failure this version produces.
    pub const KNOWN: [ScanFailure; 13] = [
        ScanFailure::DetectorUnavailable,
        ScanFailure::DetectorThrottled,
        ScanFailure::DetectorTimeout,
        ScanFailure::DetectorCrashed,
        ScanFailure::DetectorFailed,
        ScanFailure::DetectorAccessDenied,
        ScanFailure::UnreadableImage,
        ScanFailure::ImageTooSmall,
        ScanFailure::ImageTooLarge,
        ScanFailure::TranscodeFailed,
        ScanFailure::ImageMissing,
        ScanFailure::StorageFailed,
        ScanFailure::GaveUp,
    ];

    /// The stable reason code (`Scan.error` starts with it; metrics name it).
    pub fn code(&self) -> &str {
        match self {
            ScanFailure::DetectorUnavailable => "DETECTOR_UNAVAILABLE",
            ScanFailure::DetectorThrottled => "DETECTOR_THROTTLED",
            ScanFailure::DetectorTimeout => "DETECTOR_TIMEOUT",
            ScanFailure::DetectorCrashed => "DETECTOR_CRASHED",
            ScanFailure::DetectorFailed => "DETECTOR_FAILED",
            ScanFailure::DetectorAccessDenied => "DETECTOR_ACCESS_DENIED",
            ScanFailure::UnreadableImage => "UNREADABLE_IMAGE",
            ScanFailure::ImageTooSmall => "IMAGE_TOO_SMALL",
            ScanFailure::ImageTooLarge => "IMAGE_TOO_LARGE",
            ScanFailure::TranscodeFailed => "TRANSCODE_FAILED",
            ScanFailure::ImageMissing => "IMAGE_MISSING",
            ScanFailure::StorageFailed => "STORAGE_FAILED",
            ScanFailure::GaveUp => "GAVE_UP",
            ScanFailure::Unrecognised(text) => text.split_once(": ").map_or(text.as_str(), |(code, _)| code),
        }
    }

    /// A fixed explanation anyone may read. A detector's own message stays in logs and the
    /// scan's debug data (admin key): it can carry AWS's error text, ARNs and account ids.
    pub fn explanation(&self) -> &str {
        match self {
            ScanFailure::DetectorUnavailable => "the detector did not answer, and retries ran out",
            ScanFailure::DetectorThrottled => "the detector was busy, and retries ran out",
            ScanFailure::DetectorCrashed => "the detector stopped unexpectedly",
            ScanFailure::DetectorFailed => "the detector could not process the image",
            ScanFailure::DetectorAccessDenied => "the detector may not read the image (a deployment problem)",
            ScanFailure::UnreadableImage => "the image could not be decoded for detection",
            ScanFailure::ImageTooSmall => "the image is smaller than the detector's minimum (80 pixels a side)",
            ScanFailure::ImageTooLarge => "the image is over the detector's limits",
            ScanFailure::TranscodeFailed => "the image could not be converted for the detector",
            ScanFailure::ImageMissing => "the scanned bytes are gone",
            ScanFailure::StorageFailed => "the image could not be read from storage",
            ScanFailure::GaveUp => "every worker that took this scan stopped before finishing it",
            ScanFailure::DetectorTimeout => "the scan failed",
            ScanFailure::Unrecognised(text) => text.split_once(": ").map_or("", |(_, rest)| rest),
        }
    }

    /// Whether trying again may help: a busy, silent or crashed detector, or storage that did
    /// not answer. The rest fail the scan at once.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ScanFailure::DetectorUnavailable
                | ScanFailure::DetectorThrottled
                | ScanFailure::DetectorTimeout
                | ScanFailure::DetectorCrashed
                | ScanFailure::StorageFailed
        )
    }

    /// What clients read and stores keep: `CODE: explanation`.
    pub fn public(&self) -> String {
        match self {
            ScanFailure::Unrecognised(text) => text.clone(),
            known => format!("{}: {}", known.code(), known.explanation()),
        }
    }

    /// A failure as stores keep it ([`Self::public`]), exactly; other text is kept verbatim.
    pub fn parse(text: &str) -> ScanFailure {
        ScanFailure::KNOWN
            .into_iter()
            .find(|failure| failure.public() == text)
            .unwrap_or_else(|| ScanFailure::Unrecognised(text.to_owned()))
    }
}

impl fmt::Display for ScanFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.public())
    }
}

impl serde::Serialize for ScanFailure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ScanFailure {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ScanFailure, D::Error> {
        Ok(ScanFailure::parse(&String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text clients have read and stores have kept since before the type: it must not move.
    #[test]
    fn every_failure_reads_and_is_stored_exactly_as_before() {
        let expected = [
            (
                "DETECTOR_UNAVAILABLE: the detector did not answer, and retries ran out",
                true,
            ),
            ("DETECTOR_THROTTLED: the detector was busy, and retries ran out", true),
            ("DETECTOR_TIMEOUT: the scan failed", true),
            ("DETECTOR_CRASHED: the detector stopped unexpectedly", true),
            ("DETECTOR_FAILED: the detector could not process the image", false),
            (
                "DETECTOR_ACCESS_DENIED: the detector may not read the image (a deployment problem)",
                false,
            ),
            ("UNREADABLE_IMAGE: the image could not be decoded for detection", false),
            (
                "IMAGE_TOO_SMALL: the image is smaller than the detector's minimum (80 pixels a side)",
                false,
            ),
            ("IMAGE_TOO_LARGE: the image is over the detector's limits", false),
            (
                "TRANSCODE_FAILED: the image could not be converted for the detector",
                false,
            ),
            ("IMAGE_MISSING: the scanned bytes are gone", false),
            ("STORAGE_FAILED: the image could not be read from storage", true),
            (
                "GAVE_UP: every worker that took this scan stopped before finishing it",
                false,
            ),
        ];
        let shown: Vec<(String, bool)> = ScanFailure::KNOWN.iter().map(|f| (f.public(), f.retryable())).collect();
        let expected: Vec<(String, bool)> = expected.iter().map(|(t, r)| (t.to_string(), *r)).collect();
        assert_eq!(shown, expected);
        for failure in ScanFailure::KNOWN {
            assert_eq!(ScanFailure::parse(&failure.public()), failure);
            let json = serde_json::to_string(&failure).unwrap();
            assert_eq!(serde_json::from_str::<ScanFailure>(&json).unwrap(), failure);
        }
        let odd = ScanFailure::parse("SOMETHING_ELSE: written by hand");
        assert_eq!(odd, ScanFailure::Unrecognised("SOMETHING_ELSE: written by hand".into()));
        assert_eq!(
            (odd.code(), odd.public().as_str()),
            ("SOMETHING_ELSE", "SOMETHING_ELSE: written by hand")
        );
        assert!(!odd.retryable());
    }
}
