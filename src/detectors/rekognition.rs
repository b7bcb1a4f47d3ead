//! Rekognition `DetectLabels`: the cat rule, and what an image must look like to be sent.
//!
//! The rule: a cat is a label named `Cat`, or any label with `Cat` among its parents (breeds
//! such as `Manx`, or `Kitten`: the case ice-cat-wrangler missed) or its aliases, at or above
//! the configured confidence. `catConfidence` is the best such label's confidence.
//!
//! Rekognition's input rules: JPEG or PNG only (WebP is transcoded to JPEG first), at most
//! 5 MB as bytes (15 MB as an S3 object), sides between 80 and 10,000 pixels. Images outside
//! them are re-encoded smaller, or refused with a reason code.
//!
//! The SDK call that produces the response is `adapters/aws/rekognition_detector.rs`; this
//! module holds the parts that decide, tested on DetectLabels responses written in the
//! documented shape (`tests/fixtures/rekognition/`: not recorded from a live account).

use std::io::Cursor;

use image::ImageFormat;
use resolvers::domain::detection::{DetectError, DetectedLabel, Detection, ScanFailure};
use resolvers::domain::image::ImageKind;
use serde::Deserialize;

use super::preprocess::{decode_upright, to_rgb_on_white};

/// The name reported in `Scan.detector`.
pub const DETECTOR_NAME: &str = "rekognition";
/// Default minimum confidence (percent) for a label to count as a cat.
pub const DEFAULT_MIN_CONFIDENCE: f64 = 80.0;
/// Largest image Rekognition takes as bytes.
pub const MAX_INLINE_BYTES: usize = 5 * 1024 * 1024;
/// Largest image Rekognition reads from an S3 object.
pub const MAX_S3_OBJECT_BYTES: usize = 15 * 1024 * 1024;
/// Smallest and largest side Rekognition accepts.
pub const MIN_SIDE: u32 = 80;
pub const MAX_SIDE: u32 = 10_000;
/// Labels kept in a detection.
const TOP_LABELS: usize = 5;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DetectLabelsResponse {
    #[serde(default)]
    pub labels: Vec<Label>,
    pub label_model_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Label {
    pub name: String,
    /// Percent, 0–100.
    pub confidence: f64,
    #[serde(default)]
    pub parents: Vec<Named>,
    #[serde(default)]
    pub aliases: Vec<Named>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Named {
    pub name: String,
}

fn is_cat_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("cat")
}

impl Label {
    /// Names a cat itself, through a parent, or through an alias.
    pub fn is_cat(&self) -> bool {
        is_cat_name(&self.name)
            || self.parents.iter().any(|p| is_cat_name(&p.name))
            || self.aliases.iter().any(|a| is_cat_name(&a.name))
    }
}

/// Applies the cat rule at `min_confidence` (percent).
pub fn verdict(response: &DetectLabelsResponse, raw: serde_json::Value, min_confidence: f64) -> Detection {
    let best_cat = response
        .labels
        .iter()
        .filter(|l| l.is_cat())
        .map(|l| l.confidence)
        .fold(0.0f64, f64::max);
    let mut ranked: Vec<&Label> = response.labels.iter().collect();
    ranked.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    Detection {
        is_cat: best_cat > 0.0 && best_cat >= min_confidence,
        cat_confidence: (best_cat / 100.0).clamp(0.0, 1.0),
        labels: ranked
            .into_iter()
            .take(TOP_LABELS)
            .map(|l| DetectedLabel {
                name: l.name.clone(),
                confidence: (l.confidence / 100.0).clamp(0.0, 1.0),
            })
            .collect(),
        raw,
    }
}

/// An image as Rekognition will take it: JPEG or PNG bytes within its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub bytes: Vec<u8>,
    /// True when the original bytes are acceptable unchanged (so the S3 object itself is sent).
    pub unchanged: bool,
}

/// Makes `bytes` acceptable to Rekognition, or says why it cannot be. `in_s3`: the bytes are
/// an S3 object Rekognition can read (up to 15 MB); otherwise they go inline (up to 5 MB).
pub fn prepare(kind: ImageKind, bytes: &[u8], in_s3: bool) -> Result<Prepared, DetectError> {
    let size_limit = if in_s3 { MAX_S3_OBJECT_BYTES } else { MAX_INLINE_BYTES };
    let fits = matches!(kind, ImageKind::Jpeg | ImageKind::Png) && bytes.len() <= size_limit;
    let image = decode_upright(bytes).map_err(|e| DetectError::new(ScanFailure::UnreadableImage, format!("{e:#}")))?;
    let (w, h) = (image.width(), image.height());
    if w.min(h) < MIN_SIDE {
        return Err(DetectError::new(
            ScanFailure::ImageTooSmall,
            format!("{w}x{h}: Rekognition needs at least {MIN_SIDE} pixels a side"),
        ));
    }
    if fits && w.max(h) <= MAX_SIDE {
        return Ok(Prepared {
            bytes: bytes.to_vec(),
            unchanged: true,
        });
    }
    Ok(Prepared {
        bytes: reencode(image)?,
        unchanged: false,
    })
}

/// `bytes` re-encoded for Rekognition (inline, ≤ 5 MB) whatever they were: for an image
/// Rekognition refused as it was (a CMYK or 16-bit JPEG it calls invalid).
pub fn prepare_reencoded(bytes: &[u8]) -> Result<Vec<u8>, DetectError> {
    let image = decode_upright(bytes).map_err(|e| DetectError::new(ScanFailure::UnreadableImage, format!("{e:#}")))?;
    let (w, h) = (image.width(), image.height());
    if w.min(h) < MIN_SIDE {
        return Err(DetectError::new(
            ScanFailure::ImageTooSmall,
            format!("{w}x{h}: Rekognition needs at least {MIN_SIDE} pixels a side"),
        ));
    }
    reencode(image)
}

/// A JPEG of `image` (transparency onto white), shrunk until it fits (sides ≤ 10,000, ≤ 5 MB).
fn reencode(image: image::DynamicImage) -> Result<Vec<u8>, DetectError> {
    let mut image = image;
    let (w, h) = (image.width(), image.height());
    let mut longest = w.max(h).min(MAX_SIDE);
    loop {
        if image.width().max(image.height()) > longest {
            image = image.resize(longest, longest, image::imageops::FilterType::Triangle);
        }
        let mut out = Vec::new();
        // Transparency onto white, as the offline detector sees it.
        to_rgb_on_white(&image)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .map_err(|e| DetectError::new(ScanFailure::TranscodeFailed, e.to_string()))?;
        if out.len() <= MAX_INLINE_BYTES || longest <= MIN_SIDE * 2 {
            return Ok(out);
        }
        longest = longest * 3 / 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(file: &str) -> (DetectLabelsResponse, serde_json::Value) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rekognition")
            .join(file);
        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        (serde_json::from_value(raw.clone()).unwrap(), raw)
    }

    fn decide(file: &str) -> Detection {
        let (parsed, raw) = response(file);
        verdict(&parsed, raw, DEFAULT_MIN_CONFIDENCE)
    }

    #[test]
    fn the_cat_rule_on_detect_labels_responses() {
        let named = decide("cat_named.json");
        assert!(named.is_cat);
        assert!((named.cat_confidence - 0.9962).abs() < 1e-9);
        assert_eq!(named.labels[0].name, "Cat");

        let breeds = decide("cat_only_through_parents.json");
        assert!(breeds.is_cat, "a Manx is a cat through its parents");
        assert!((breeds.cat_confidence - 0.884).abs() < 1e-9);

        assert!(decide("cat_only_through_alias.json").is_cat);

        let dog = decide("dog.json");
        assert!(!dog.is_cat);
        assert_eq!(dog.cat_confidence, 0.0);

        let unsure = decide("cat_low_confidence.json");
        assert!(!unsure.is_cat, "41.5% is below the threshold");
        assert!(
            (unsure.cat_confidence - 0.415).abs() < 1e-9,
            "but the confidence is reported"
        );
        let (parsed, raw) = response("cat_low_confidence.json");
        assert!(verdict(&parsed, raw, 40.0).is_cat, "the threshold is configurable");

        let empty = decide("empty.json");
        assert!(!empty.is_cat && empty.labels.is_empty());
    }

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(path),
        )
        .unwrap()
    }

    #[test]
    fn images_are_made_acceptable_to_rekognition_or_refused_with_a_reason() {
        let jpeg = fixture("images/cat_kde_tabby_q85.jpg");
        assert_eq!(
            prepare(ImageKind::Jpeg, &jpeg, false).unwrap(),
            Prepared {
                bytes: jpeg,
                unchanged: true
            }
        );

        let webp = prepare(ImageKind::WebP, &fixture("bad-inputs/cat.webp"), true).unwrap();
        assert!(!webp.unchanged);
        assert_eq!(
            image::guess_format(&webp.bytes).unwrap(),
            ImageFormat::Jpeg,
            "WebP goes as JPEG"
        );

        let tiny = prepare(ImageKind::Png, &fixture("bad-inputs/tiny_1x1.png"), true).unwrap_err();
        assert_eq!(tiny.failure, ScanFailure::ImageTooSmall);
        assert!(!tiny.retryable());
    }
}
