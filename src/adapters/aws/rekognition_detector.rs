//! The cat detector on AWS: Rekognition `DetectLabels`, through the official SDK.
//!
//! JPEG and PNG images within Rekognition's limits are sent as a reference to their S3 object
//! (Rekognition reads it; up to 15 MB). Anything else (WebP, oversized sides) is re-encoded by
//! [`prepare`] and sent inline (up to 5 MB). The response is turned back into the JSON shape
//! of the DetectLabels API and decided by the one rule in `detectors/rekognition.rs`, the same
//! code the fixture responses (written in the documented shape) test.
//!
//! Failures are classified for the scanner: throttling, Rekognition's own errors and network
//! trouble are retryable (the scanner backs off and tries again); a refused image is not.
//!
//! Two refusals of an S3 object are not the image's fault, so the bytes go inline instead:
//! `InvalidImageFormatException` (Rekognition reads some JPEGs our decoder takes, such as CMYK
//! or 16-bit ones, as invalid: they are re-encoded), and `InvalidS3ObjectException`, which is
//! what Rekognition says both for a missing object and for one it may not read (a bucket or
//! key policy): the object is fetched with our own rights, missing → `IMAGE_MISSING`,
//! present → sent inline.

use async_trait::async_trait;
use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rekognition::operation::detect_labels::DetectLabelsOutput;
use aws_sdk_rekognition::primitives::Blob;
use aws_sdk_rekognition::types::{Image, S3Object};
use resolvers::domain::detection::{DetectError, Detection, ScanFailure};
use resolvers::domain::image::{ImageKind, ImageRecord};
use resolvers::ports::{CatDetector, ScanInput};
use serde_json::{json, Value};

use super::s3_image_store::scan_upload_key;
use crate::detectors::rekognition::{
    prepare, prepare_reencoded, verdict, DetectLabelsResponse, DETECTOR_NAME, MAX_S3_OBJECT_BYTES, MAX_SIDE, MIN_SIDE,
};
use tracing::instrument;

/// Rekognition's default floor is 55 %; asking for a little less keeps low-confidence cats
/// in the debug data and in `catConfidence` even when they do not pass the threshold.
const REQUEST_MIN_CONFIDENCE: f32 = 40.0;
const MAX_LABELS: i32 = 50;

/// [`CatDetector`] over Rekognition, reading images from the stage's bucket.
pub struct RekognitionDetector {
    client: aws_sdk_rekognition::Client,
    /// For the bytes, when Rekognition cannot use the S3 object itself.
    s3: aws_sdk_s3::Client,
    bucket: String,
    /// A cat at or above this confidence (percent).
    min_confidence: f64,
}

impl RekognitionDetector {
    pub fn new(
        client: aws_sdk_rekognition::Client,
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        min_confidence: f64,
    ) -> Self {
        RekognitionDetector {
            client,
            s3,
            bucket: bucket.into(),
            min_confidence,
        }
    }

    /// One DetectLabels call.
    async fn detect_labels(&self, image: Image) -> Result<DetectLabelsOutput, (Option<String>, DetectError)> {
        self.client
            .detect_labels()
            .image(image)
            .max_labels(MAX_LABELS)
            .min_confidence(REQUEST_MIN_CONFIDENCE.min(self.min_confidence as f32))
            .send()
            .await
            .map_err(|err| match &err {
                SdkError::ServiceError(service) => {
                    let code = service.err().code().map(str::to_owned);
                    let classified = classify(code.as_deref(), &err.to_string());
                    (code, classified)
                }
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
                    None,
                    DetectError::new(ScanFailure::DetectorUnavailable, format!("Rekognition: {err}")),
                ),
                _ => (
                    None,
                    DetectError::new(ScanFailure::DetectorFailed, format!("Rekognition: {err}")),
                ),
            })
    }

    /// The object's bytes with our own rights; `IMAGE_MISSING` when it is not there.
    async fn object_bytes(&self, key: &str) -> Result<Vec<u8>, DetectError> {
        match self.s3.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(object) => Ok(object
                .body
                .collect()
                .await
                .map_err(|e| DetectError::new(ScanFailure::StorageFailed, e.to_string()))?
                .to_vec()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Err(DetectError::new(
                ScanFailure::ImageMissing,
                format!("{key} is not in the bucket"),
            )),
            Err(err) => Err(DetectError::new(
                ScanFailure::StorageFailed,
                format!("S3 GetObject {key}: {err}"),
            )),
        }
    }

    /// After Rekognition refused the S3 object: the bytes, re-encoded, inline.
    async fn detect_inline_instead(&self, input: &ScanInput, why: &str) -> Result<DetectLabelsOutput, DetectError> {
        let key = Self::object_key(input);
        let bytes = self.object_bytes(&key).await?;
        tracing::info!(
            key,
            why,
            "Rekognition could not use the S3 object; sending the bytes inline"
        );
        let reencoded = tokio::task::spawn_blocking(move || prepare_reencoded(&bytes))
            .await
            .map_err(|e| DetectError::new(ScanFailure::DetectorFailed, e.to_string()))??;
        self.detect_labels(Image::builder().bytes(Blob::new(reencoded)).build())
            .await
            .map_err(|(_, err)| err)
    }

    /// The S3 key the scanned bytes were read from.
    fn object_key(input: &ScanInput) -> String {
        match &input.image {
            Some(id) => id.storage_key(),
            None => scan_upload_key(&input.sha256),
        }
    }
}

#[async_trait]
impl CatDetector for RekognitionDetector {
    fn name(&self) -> &str {
        DETECTOR_NAME
    }

    /// JPEG and PNG that Rekognition takes as they are (size and sides within its limits, by
    /// the row's facts) are read by Rekognition from S3: the scan skips its own `GetObject`.
    fn reads_from_storage(&self, image: &ImageRecord) -> bool {
        let sides_fit = |side: u32| (MIN_SIDE..=MAX_SIDE).contains(&side);
        matches!(image.kind, ImageKind::Jpeg | ImageKind::Png)
            && image.byte_size <= MAX_S3_OBJECT_BYTES as u64
            && sides_fit(image.width)
            && sides_fit(image.height)
    }

    #[instrument(level = "debug", skip_all)]
    async fn detect(&self, input: &ScanInput) -> Result<Detection, DetectError> {
        let in_s3 = || {
            let object = S3Object::builder()
                .bucket(&self.bucket)
                .name(Self::object_key(input))
                .build();
            Image::builder().s3_object(object).build()
        };
        let (image, from_s3) = match input.bytes.clone() {
            None => (in_s3(), true),
            Some(bytes) => {
                let kind = input.kind;
                // Decoding (and maybe re-encoding) is CPU work: off the async threads.
                let prepared = tokio::task::spawn_blocking(move || prepare(kind, &bytes, true))
                    .await
                    .map_err(|e| DetectError::new(ScanFailure::DetectorFailed, e.to_string()))??;
                if prepared.unchanged {
                    (in_s3(), true)
                } else {
                    (Image::builder().bytes(Blob::new(prepared.bytes)).build(), false)
                }
            }
        };
        let output = match self.detect_labels(image).await {
            Ok(output) => output,
            Err((Some(code), _))
                if from_s3
                    && matches!(
                        code.as_str(),
                        "InvalidImageFormatException" | "InvalidS3ObjectException"
                    ) =>
            {
                self.detect_inline_instead(input, &code).await?
            }
            Err((_, err)) => return Err(err),
        };
        let raw = response_json(&output);
        let parsed: DetectLabelsResponse = serde_json::from_value(raw.clone())
            .map_err(|e| DetectError::new(ScanFailure::DetectorFailed, format!("DetectLabels response: {e}")))?;
        Ok(verdict(&parsed, raw, self.min_confidence))
    }
}

/// A Rekognition error code as a scan failure: what is worth retrying, and a stable reason.
pub fn classify(code: Option<&str>, message: &str) -> DetectError {
    let message = format!("Rekognition: {message}");
    match code.unwrap_or_default() {
        "ThrottlingException" | "ProvisionedThroughputExceededException" | "LimitExceededException" => {
            DetectError::new(ScanFailure::DetectorThrottled, message)
        }
        "InternalServerError" | "ServiceUnavailableException" | "ServiceUnavailable" => {
            DetectError::new(ScanFailure::DetectorUnavailable, message)
        }
        "InvalidImageFormatException" => DetectError::new(ScanFailure::UnreadableImage, message),
        "ImageTooLargeException" => DetectError::new(ScanFailure::ImageTooLarge, message),
        "InvalidS3ObjectException" => DetectError::new(ScanFailure::ImageMissing, message),
        "AccessDeniedException" => DetectError::new(ScanFailure::DetectorAccessDenied, message),
        _ => DetectError::new(ScanFailure::DetectorFailed, message),
    }
}

/// The SDK's typed output as the JSON the DetectLabels API returns (what debug data shows).
fn response_json(output: &DetectLabelsOutput) -> Value {
    let names = |names: Vec<Option<&str>>| -> Vec<Value> {
        names.into_iter().flatten().map(|n| json!({ "Name": n })).collect()
    };
    let labels: Vec<Value> = output
        .labels()
        .iter()
        .map(|label| {
            let instances: Vec<Value> = label
                .instances()
                .iter()
                .map(|instance| {
                    let b = instance.bounding_box();
                    json!({
                        "Confidence": instance.confidence(),
                        "BoundingBox": {
                            "Width": b.and_then(|b| b.width()),
                            "Height": b.and_then(|b| b.height()),
                            "Left": b.and_then(|b| b.left()),
                            "Top": b.and_then(|b| b.top()),
                        },
                    })
                })
                .collect();
            json!({
                "Name": label.name().unwrap_or_default(),
                "Confidence": label.confidence().unwrap_or(0.0),
                "Parents": names(label.parents().iter().map(|p| p.name()).collect()),
                "Aliases": names(label.aliases().iter().map(|a| a.name()).collect()),
                "Categories": names(label.categories().iter().map(|c| c.name()).collect()),
                "Instances": instances,
            })
        })
        .collect();
    json!({
        "Labels": labels,
        "LabelModelVersion": output.label_model_version(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_outages_are_retried_refusals_are_not() {
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "InternalServerError",
        ] {
            assert!(classify(Some(code), "x").retryable(), "{code}");
        }
        let refused = classify(Some("InvalidImageFormatException"), "bad");
        assert!(!refused.retryable());
        assert_eq!(refused.failure, ScanFailure::UnreadableImage);
        assert_eq!(
            classify(Some("InvalidS3ObjectException"), "gone").failure,
            ScanFailure::ImageMissing
        );
        let unknown = classify(None, "?");
        assert!(!unknown.retryable());
        assert_eq!(unknown.failure, ScanFailure::DetectorFailed);
    }

    /// BENCHMARKS' budget: JPEG/PNG within Rekognition's S3 limits are read by Rekognition (no
    /// GetObject); WebP and anything over the limits take the inline branch (one GetObject).
    #[tokio::test]
    async fn rekognition_reads_only_jpeg_and_png_within_its_s3_limits_itself() {
        use resolvers::domain::image::{ImageId, Sha256Hex};
        use resolvers::domain::label::LabelSet;
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let detector = RekognitionDetector::new(
            aws_sdk_rekognition::Client::new(&sdk),
            aws_sdk_s3::Client::new(&sdk),
            "bucket",
            80.0,
        );
        let label = LabelSet::default_pets().parse("cat").unwrap();
        let image = |kind, width, height, byte_size| ImageRecord {
            id: ImageId::new(label.clone(), Sha256Hex::of(b"x")),
            shard: 0,
            slot: None,
            weight: resolvers::domain::weight::Weight::DEFAULT,
            kind,
            width,
            height,
            byte_size,
            created_at: chrono::Utc::now(),
            hold: None,
            variants: Vec::new(),
            placeholder: None,
        };
        assert!(detector.reads_from_storage(&image(ImageKind::Jpeg, 512, 512, 48_000)));
        assert!(detector.reads_from_storage(&image(ImageKind::Png, MAX_SIDE, MIN_SIDE, MAX_S3_OBJECT_BYTES as u64)));
        for (what, over) in [
            ("WebP", image(ImageKind::WebP, 512, 512, 48_000)),
            (
                "over 15 MB",
                image(ImageKind::Jpeg, 512, 512, MAX_S3_OBJECT_BYTES as u64 + 1),
            ),
            ("a side over 10,000", image(ImageKind::Png, MAX_SIDE + 1, 512, 48_000)),
            ("a side under 80", image(ImageKind::Jpeg, 512, MIN_SIDE - 1, 48_000)),
        ] {
            assert!(!detector.reads_from_storage(&over), "{what}");
        }
    }
}
