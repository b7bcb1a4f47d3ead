//! Answers a real account gives and moto does not, at the edges of Rekognition and SSM:
//!
//! - Rekognition refuses an S3 object it cannot use: `InvalidImageFormatException` (some JPEGs
//!   our decoder reads, CMYK or 16-bit), `InvalidS3ObjectException` (a missing object, and
//!   equally one it may not read). The scan fetches the bytes itself and sends them inline;
//!   only a truly missing object is `IMAGE_MISSING`, and no AWS text reaches `Scan.error`.
//! - SSM throttles `GetParametersByPath` (about 40 a second per account) when many Lambdas
//!   start at once: start-up retries instead of failing the cold start.
//!
//! [`CannedAnswers`] (`support/canned.rs`) answers the chosen requests.

use pawql::adapters::aws::{self, RekognitionDetector};
use resolvers::domain::image::{ImageId, ImageKind, Sha256Hex};
use resolvers::ports::{CatDetector, ScanInput};

use crate::support::canned::{Answer, CannedAnswers};
use crate::support::helpers::{fixture, Backend, TestApp};
use crate::support::moto::{unique_stage, MotoServer};

async fn detector_refusing(
    refusal: &CannedAnswers,
) -> (crate::support::helpers::TestApp, RekognitionDetector, ImageId) {
    let app = TestApp::builder(Backend::Aws).stream_handler_scans().start().await;
    let (resources, clients) = crate::scan_stream::resources(&app);
    let clients = crate::iam::enforcing(
        &clients,
        &[crate::iam::Function::Scan],
        &crate::iam::stage_of(&resources),
    );
    let rekognition = aws_sdk_rekognition::Client::from_conf(
        clients
            .rekognition
            .config()
            .to_builder()
            .interceptor(refusal.clone())
            .build(),
    );
    let detector = RekognitionDetector::new(rekognition, clients.s3.clone(), &resources.bucket, 80.0);
    let uploaded = app.upload("cat", "images/cat_kde_tabby_q85.jpg", 0.5).await;
    let id = ImageId::parse(
        uploaded["id"].as_str().unwrap(),
        &resolvers::domain::label::LabelSet::default_pets(),
    )
    .unwrap();
    (app, detector, id)
}

/// A scan input as the scanner builds it for a JPEG Rekognition may read from S3.
fn from_s3(id: &ImageId) -> ScanInput {
    ScanInput {
        sha256: Sha256Hex::of(&fixture("images/cat_kde_tabby_q85.jpg")),
        kind: ImageKind::Jpeg,
        bytes: None,
        image: Some(id.clone()),
    }
}

#[tokio::test]
async fn an_s3_object_rekognition_calls_invalid_is_sent_inline_instead() {
    let refusal = CannedAnswers::default();
    refusal.arm_when(
        "DetectLabels",
        Some("S3Object"),
        1,
        Answer::Error("InvalidImageFormatException"),
    );
    let (_app, detector, id) = detector_refusing(&refusal).await;
    let detection = detector
        .detect(&from_s3(&id))
        .await
        .expect("answered from the inline bytes");
    assert_eq!(refusal.injected("DetectLabels"), 1, "the S3 object was refused once");
    assert_eq!(
        detection.labels[0].name, "Mobile Phone",
        "moto's answer to the inline request"
    );
}

#[tokio::test]
async fn an_s3_object_rekognition_cannot_read_is_sent_inline_and_only_a_missing_one_is_missing() {
    // Present, but Rekognition may not read it (its message is the same as for a missing one).
    let refusal = CannedAnswers::default();
    refusal.arm_when(
        "DetectLabels",
        Some("S3Object"),
        1,
        Answer::Error("InvalidS3ObjectException"),
    );
    let (app, detector, id) = detector_refusing(&refusal).await;
    let detection = detector
        .detect(&from_s3(&id))
        .await
        .expect("read with our rights, sent inline");
    assert_eq!(
        (refusal.injected("DetectLabels"), detection.labels[0].name.as_str()),
        (1, "Mobile Phone")
    );

    // Really gone: IMAGE_MISSING, and the public text carries nothing of AWS's.
    let (resources, clients) = crate::scan_stream::resources(&app);
    clients
        .s3
        .delete_object()
        .bucket(&resources.bucket)
        .key(id.storage_key())
        .send()
        .await
        .unwrap();
    refusal.arm_when(
        "DetectLabels",
        Some("S3Object"),
        1,
        Answer::Error("InvalidS3ObjectException"),
    );
    let missing = detector.detect(&from_s3(&id)).await.unwrap_err();
    assert_eq!(refusal.injected("DetectLabels"), 2);
    assert_eq!(
        missing.failure,
        resolvers::domain::detection::ScanFailure::ImageMissing,
        "{missing}"
    );
    assert_eq!(missing.failure.public(), "IMAGE_MISSING: the scanned bytes are gone");
    assert!(!missing.failure.public().contains("Exception") && !missing.failure.public().contains("by the test"));
}

#[tokio::test]
async fn a_throttled_parameter_read_at_a_burst_of_cold_starts_is_retried() {
    let plain = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&plain, &stage).await.unwrap();
    // Five throttled answers: more than the SDK's own three attempts.
    let throttled = CannedAnswers::default();
    throttled.arm("GetParametersByPath", 5, Answer::Error("ThrottlingException"));
    let ssm = aws_sdk_ssm::Client::from_conf(plain.ssm.config().to_builder().interceptor(throttled.clone()).build());
    // With the scan function's role, the one of the three whose cold starts burst most.
    let ssm = crate::iam::enforcing(
        &aws::AwsClients { ssm, ..plain.clone() },
        &[crate::iam::Function::Scan],
        &stage,
    )
    .ssm;
    let parameters = aws::load_parameters(&ssm, &stage)
        .await
        .expect("retried past the throttling");
    assert_eq!(throttled.injected("GetParametersByPath"), 5);
    assert!(parameters.contains_key("bucket"), "{parameters:?}");
}
