//! Why an image is held out of the random pool (the label check): a state, not a string.
//!
//! Its `Display` is what clients see as `heldReason` and what the stores keep, so rows written
//! before the type existed read back as the same holds.

use std::fmt;

use super::failure::ScanFailure;

/// Why an image is held out of the random pool.
#[derive(Debug, Clone, PartialEq)]
pub enum Hold {
    /// Uploaded under the checked label; waiting for a scan to confirm a cat.
    AwaitingScan,
    /// The scan of its bytes found no cat, with this P(cat) (0..1), to the 3 places it is
    /// shown and kept with (made by [`Hold::not_a_cat`], so two holds compare as shown).
    NotACat { confidence: f64 },
    /// The scan of its bytes failed, for this reason.
    ScanFailed(ScanFailure),
    /// A reason of no kind this version knows (a row written by hand, or by another version),
    /// kept verbatim: the image stays held, and writes conditioned on the row still match it.
    Other(String),
}

const AWAITING_SCAN: &str = "AWAITING_SCAN";
const NOT_A_CAT: &str = "NOT_A_CAT";
const SCAN_FAILED: &str = "SCAN_FAILED";

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::AwaitingScan => write!(
                f,
                "{AWAITING_SCAN}: held out of the random pool until a scan confirms a cat"
            ),
            Hold::NotACat { confidence } => {
                write!(f, "{NOT_A_CAT}: the scan found no cat (confidence {confidence:.3})")
            }
            Hold::ScanFailed(failure) => write!(f, "{SCAN_FAILED}: {failure}"),
            Hold::Other(text) => f.write_str(text),
        }
    }
}

impl Hold {
    /// A scan's "no cat" with its confidence rounded to the 3 places a hold is shown and kept
    /// with, so a hold made now equals the same hold read back from a store.
    pub fn not_a_cat(confidence: f64) -> Hold {
        Hold::NotACat {
            confidence: format!("{confidence:.3}").parse().expect("a formatted number parses"),
        }
    }

    /// A hold as a store keeps it (its `Display`), exactly: text that does not read back as
    /// the same words is [`Hold::Other`].
    pub fn parse(text: &str) -> Hold {
        let (code, rest) = text.split_once(": ").unwrap_or((text, ""));
        let parsed = match code {
            AWAITING_SCAN => Some(Hold::AwaitingScan),
            NOT_A_CAT => rest
                .strip_prefix("the scan found no cat (confidence ")
                .and_then(|n| n.strip_suffix(')'))
                .and_then(|n| n.parse().ok())
                .map(|confidence| Hold::NotACat { confidence }),
            SCAN_FAILED => Some(Hold::ScanFailed(ScanFailure::parse(rest))),
            _ => None,
        };
        parsed
            .filter(|hold| hold.to_string() == text)
            .unwrap_or_else(|| Hold::Other(text.to_owned()))
    }
}

impl serde::Serialize for Hold {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Hold {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Hold, D::Error> {
        Ok(Hold::parse(&String::deserialize(deserializer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hold_reads_back_as_itself_and_old_rows_still_read() {
        for hold in [
            Hold::AwaitingScan,
            Hold::NotACat { confidence: 0.012 },
            Hold::ScanFailed(ScanFailure::DetectorUnavailable),
            Hold::ScanFailed(ScanFailure::Unrecognised("the scan failed".into())),
        ] {
            assert_eq!(Hold::parse(&hold.to_string()), hold, "{hold}");
        }
        // As rows before the type held them.
        assert_eq!(
            Hold::parse("AWAITING_SCAN: held out of the random pool until a scan confirms a cat"),
            Hold::AwaitingScan
        );
        assert_eq!(
            Hold::parse("NOT_A_CAT: the scan found no cat (confidence 0.250)"),
            Hold::NotACat { confidence: 0.25 }
        );
        assert_eq!(
            Hold::parse("SCAN_FAILED: DETECTOR_UNAVAILABLE: the detector did not answer, and retries ran out"),
            Hold::ScanFailed(ScanFailure::DetectorUnavailable)
        );
        // A hold made from a fresh verdict equals the same hold read back.
        let fresh = Hold::not_a_cat(0.250_4);
        assert_eq!(Hold::parse(&fresh.to_string()), fresh);
        assert_eq!(fresh.to_string(), "NOT_A_CAT: the scan found no cat (confidence 0.250)");
        for verbatim in ["something else", "NOT_A_CAT: P(cat) = 0.01"] {
            assert_eq!(Hold::parse(verbatim), Hold::Other(verbatim.into()));
            assert_eq!(Hold::parse(verbatim).to_string(), verbatim);
        }
    }
}
