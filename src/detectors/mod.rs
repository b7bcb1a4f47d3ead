//! Cat detectors: the offline one (EfficientNet-Lite0 on tract; feature `offline-detector`)
//! and Rekognition on AWS.

#[cfg(feature = "offline-detector")]
pub mod offline;
pub mod preprocess;
