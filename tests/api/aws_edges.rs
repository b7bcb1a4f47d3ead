//! Answers a real account gives and moto does not, at the edges of Rekognition and SSM:
//!
//! - Rekognition refuses an S3 object it cannot use: `InvalidImageFormatException` (some JPEGs
//!   our decoder reads, CMYK or 16-bit), `InvalidS3ObjectException` (a missing object, and
//!   equally one it may not read). The scan fetches the bytes itself and sends them inline;
//!   only a truly missing object is `IMAGE_MISSING`, and no AWS text reaches `Scan.error`.
//! - SSM throttles `GetParametersByPath` (about 40 a second per account) when many Lambdas
//!   start at once: start-up retries instead of failing the cold start.
//!
//! [`CannedError`] answers chosen requests of any service with an error response of a code.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_types::body::SdkBody;
use pawql::adapters::aws::{self, RekognitionDetector};
use resolvers::domain::image::{ImageId, ImageKind, Sha256Hex};
use resolvers::ports::{CatDetector, ScanInput};
use serde_json::json;

use crate::helpers::{fixture, spawn_aws_app_without_worker};
use crate::moto::{unique_stage, MotoServer};

/// Answers the next `times` requests whose body contains `when` with error `code`.
#[derive(Debug, Clone)]
struct CannedError {
    when: &'static str,
    code: &'static str,
    times: Arc<AtomicU32>,
    hits: Arc<AtomicU32>,
}

impl CannedError {
    fn new(when: &'static str, code: &'static str, times: u32) -> CannedError {
        CannedError {
            when,
            code,
            times: Arc::new(AtomicU32::new(times)),
            hits: Arc::default(),
        }
    }

    fn hits(&self) -> u32 {
        self.hits.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Copy)]
struct Refuse;

impl aws_smithy_types::config_bag::Storable for Refuse {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Refuse>;
}

impl Intercept for CannedError {
    fn name(&self) -> &'static str {
        "CannedError"
    }

    // A read (DetectLabels, GetParametersByPath) goes through unchanged; its answer is replaced.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        let matches = String::from_utf8_lossy(body).contains(self.when);
        let armed = self
            .times
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
            .is_ok();
        if matches && armed {
            self.hits.fetch_add(1, Ordering::SeqCst);
            cfg.interceptor_state().store_put(Refuse);
        } else if armed {
            self.times.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Refuse>().is_none() {
            return Ok(());
        }
        let response = context.response_mut();
        *response.status_mut() = 400u16.try_into().unwrap();
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.1");
        let body = json!({ "__type": self.code, "Message": format!("{} (canned by the test)", self.code) });
        *response.body_mut() = SdkBody::from(body.to_string());
        Ok(())
    }
}

async fn detector_refusing(refusal: &CannedError) -> (crate::helpers::TestApp, RekognitionDetector, ImageId) {
    let (app, _stage) = spawn_aws_app_without_worker().await;
    let (resources, clients) = crate::scan_stream::resources(&app);
    let clients = crate::iam::enforcing(&clients);
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
    let refusal = CannedError::new("S3Object", "InvalidImageFormatException", 1);
    let (_app, detector, id) = detector_refusing(&refusal).await;
    let detection = detector
        .detect(&from_s3(&id))
        .await
        .expect("answered from the inline bytes");
    assert_eq!(refusal.hits(), 1, "the S3 object was refused once");
    assert_eq!(
        detection.labels[0].name, "Mobile Phone",
        "moto's answer to the inline request"
    );
}

#[tokio::test]
async fn an_s3_object_rekognition_cannot_read_is_sent_inline_and_only_a_missing_one_is_missing() {
    // Present, but Rekognition may not read it (its message is the same as for a missing one).
    let refusal = CannedError::new("S3Object", "InvalidS3ObjectException", 1);
    let (app, detector, id) = detector_refusing(&refusal).await;
    let detection = detector
        .detect(&from_s3(&id))
        .await
        .expect("read with our rights, sent inline");
    assert_eq!((refusal.hits(), detection.labels[0].name.as_str()), (1, "Mobile Phone"));

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
    refusal.times.store(1, Ordering::SeqCst);
    let missing = detector.detect(&from_s3(&id)).await.unwrap_err();
    assert_eq!(refusal.hits(), 2);
    assert_eq!(missing.code, "IMAGE_MISSING", "{missing}");
    assert_eq!(missing.public(), "IMAGE_MISSING: the scanned bytes are gone");
    assert!(!missing.public().contains("Exception") && !missing.public().contains("by the test"));
}

#[tokio::test]
async fn a_throttled_parameter_read_at_a_burst_of_cold_starts_is_retried() {
    let plain = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&plain, &stage).await.unwrap();
    // Five throttled answers: more than the SDK's own three attempts.
    let throttled = CannedError::new("/pawql/", "ThrottlingException", 5);
    let ssm = aws_sdk_ssm::Client::from_conf(plain.ssm.config().to_builder().interceptor(throttled.clone()).build());
    let parameters = aws::load_parameters(&ssm, &stage)
        .await
        .expect("retried past the throttling");
    assert_eq!(throttled.hits(), 5);
    assert!(parameters.contains_key("bucket"), "{parameters:?}");
}
