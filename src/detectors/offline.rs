//! The offline cat detector: EfficientNet-Lite0 (ImageNet-1k) run by tract, pure Rust.
//!
//! The model and its labels are compiled into the binary (`models/`, Apache-2.0, see
//! `models/NOTICE` and `models/PROVENANCE.md`), loaded and optimised once per process, and
//! shared. P(cat) is the summed probability of the five ImageNet cat classes 281–285 (tabby,
//! tiger cat, Persian, Siamese, Egyptian cat); it is a cat at or above the threshold.

use std::sync::{Arc, OnceLock};

use anyhow::Context;
use async_trait::async_trait;
use resolvers::domain::detection::{DetectError, DetectedLabel, Detection, ScanFailure};
use resolvers::ports::{CatDetector, ScanInput};
use tract_nnef::prelude::*;

use super::preprocess::{classifier_input, INPUT_SIZE};
use tracing::instrument;

// NNEF, converted from the ONNX file by `tools/convert-model` (models/PROVENANCE.md): tract reads
// it without its ONNX front end, which the build would otherwise compile.
static MODEL_BYTES: &[u8] = include_bytes!("../../models/effnet_lite0.nnef.tgz");
static LABELS: &str = include_str!("../../models/imagenet_labels.txt");

/// ImageNet classes that are domestic cats.
pub const CAT_CLASSES: std::ops::RangeInclusive<usize> = 281..=285;
pub use super::DEFAULT_CAT_THRESHOLD;
/// The name reported in `Scan.detector`.
pub const DETECTOR_NAME: &str = "offline:efficientnet-lite0";
/// Labels kept in a detection (the raw output keeps all 1000 scores).
const TOP_LABELS: usize = 5;

type Plan = Arc<TypedSimplePlan>;

/// The loaded model, shared by every detector instance in the process.
struct Loaded {
    plan: Plan,
    /// Which output is `probs` (softmax); the other is `logits`.
    probs_output: usize,
    labels: Vec<&'static str>,
}

fn loaded() -> anyhow::Result<&'static Loaded> {
    static MODEL: OnceLock<Result<Loaded, String>> = OnceLock::new();
    MODEL
        .get_or_init(|| load().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("loading the offline model: {e}"))
}

fn load() -> anyhow::Result<Loaded> {
    let side = INPUT_SIZE as usize;
    let model = tract_nnef::nnef()
        .model_for_read(&mut std::io::Cursor::new(MODEL_BYTES))
        .context("reading the NNEF model")?;
    let input = model.input_fact(0)?;
    anyhow::ensure!(
        input.shape.as_concrete() == Some(&[1, 3, side, side][..]) && input.datum_type == f32::datum_type(),
        "the model's input is {input:?}, not f32 [1, 3, {side}, {side}]"
    );
    let model = model.into_optimized()?;
    let probs_output = model
        .output_outlets()?
        .iter()
        .position(|outlet| model.outlet_label(*outlet) == Some("probs"))
        .context("the model has no `probs` output")?;
    let plan = model.into_runnable()?;
    let labels: Vec<&'static str> = LABELS.lines().collect();
    anyhow::ensure!(labels.len() == 1000, "expected 1000 labels, found {}", labels.len());
    Ok(Loaded {
        plan,
        probs_output,
        labels,
    })
}

/// The offline detector with its threshold (the model itself is shared process-wide).
#[derive(Clone)]
pub struct OfflineDetector {
    threshold: f64,
}

impl OfflineDetector {
    /// Loads the model now (once per process) so the first scan does not pay for it.
    pub fn load(threshold: f64) -> anyhow::Result<OfflineDetector> {
        loaded()?;
        Ok(OfflineDetector { threshold })
    }

    /// Classifies image bytes. CPU-bound: call from a blocking thread.
    pub fn classify(&self, bytes: &[u8]) -> anyhow::Result<Detection> {
        let model = loaded()?;
        let side = INPUT_SIZE as usize;
        let input = classifier_input(bytes)?;
        let tensor: Tensor = tract_ndarray::Array4::from_shape_vec((1, 3, side, side), input)?.into();
        let outputs = model.plan.run(tvec!(tensor.into()))?;
        let probs = outputs[model.probs_output].to_plain_array_view::<f32>()?;
        let probs: Vec<f64> = probs.iter().map(|p| f64::from(*p)).collect();
        anyhow::ensure!(probs.len() == 1000, "expected 1000 scores, got {}", probs.len());

        let cat_confidence = probs[CAT_CLASSES].iter().sum::<f64>().clamp(0.0, 1.0);
        let mut ranked: Vec<usize> = (0..probs.len()).collect();
        ranked.sort_by(|a, b| probs[*b].total_cmp(&probs[*a]));
        let labels = ranked
            .iter()
            .take(TOP_LABELS)
            .map(|&class| DetectedLabel {
                name: model.labels[class].to_owned(),
                confidence: probs[class],
            })
            .collect();
        Ok(Detection {
            is_cat: cat_confidence >= self.threshold,
            cat_confidence,
            labels,
            raw: serde_json::json!({
                "model": "effnet_lite0.nnef.tgz",
                "catClasses": [281, 282, 283, 284, 285],
                "threshold": self.threshold,
                "probs": probs.iter().map(|p| (p * 1e6).round() / 1e6).collect::<Vec<_>>(),
            }),
        })
    }
}

#[async_trait]
impl CatDetector for OfflineDetector {
    fn name(&self) -> &str {
        DETECTOR_NAME
    }

    #[instrument(level = "debug", skip_all)]
    async fn detect(&self, input: &ScanInput) -> Result<Detection, DetectError> {
        let detector = self.clone();
        // reads_from_storage is left at "no", so the scan always hands over the bytes.
        let bytes = input
            .bytes
            .clone()
            .ok_or_else(|| DetectError::new(ScanFailure::DetectorFailed, "the offline detector needs the bytes"))?;
        // CPU-bound (tens of milliseconds): off the async runtime.
        match tokio::task::spawn_blocking(move || detector.classify(&bytes)).await {
            Ok(Ok(detection)) => Ok(detection),
            Ok(Err(e)) => Err(DetectError::new(ScanFailure::DetectorFailed, format!("{e:#}"))),
            Err(e) => Err(DetectError::new(ScanFailure::DetectorCrashed, e.to_string())),
        }
    }
}
