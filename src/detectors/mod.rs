//! Cat detectors: the offline one (EfficientNet-Lite0 on tract; feature `offline-detector`)
//! and Rekognition on AWS (`rekognition.rs`: the cat rule and Rekognition's input limits; the
//! SDK call comes with the AWS scan path).

#[cfg(feature = "offline-detector")]
pub mod offline;
pub mod preprocess;
pub mod rekognition;
