//! Cat detectors: the offline one (EfficientNet-Lite0 on tract; feature `offline-detector`)
//! and Rekognition on AWS (`rekognition.rs`: the cat rule and Rekognition's input limits; the
//! SDK call comes with the AWS scan path).

#[cfg(feature = "offline-detector")]
pub mod offline;
pub mod preprocess;
pub mod rekognition;

/// Default decision threshold of the offline detector on P(cat). On the fixture photos every cat
/// scores ≥ 0.43 and everything else ≤ 0.012 (models/PROVENANCE.md); 0.2 sits well inside that gap.
pub const DEFAULT_CAT_THRESHOLD: f64 = 0.2;
