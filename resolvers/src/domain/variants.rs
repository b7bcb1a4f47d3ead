//! Sized variants of an uploaded image, and its placeholder: what a phone downloads instead of
//! the original.
//!
//! Made at upload, from the image as displayed (EXIF orientation applied) that validation
//! decoded, so the bytes are decoded once, and only for an image not stored yet (measured in
//! BENCHMARKS, "Pictures for phones"). Each size fits the image within a square (longest side
//! ≤ 256, 640, 1280 px), keeps its aspect ratio and is never upscaled; it is JPEG (quality 82)
//! unless the image has transparency, then PNG (JPEG has no alpha). A size the original
//! already fits, or whose encoding is not smaller than the original file, is not stored: its
//! URL is the original's. The placeholder is a BlurHash (4×3 components) of the smallest
//! rendition: ~30 characters a client turns into a blurred preview before any bytes arrive.

use bytes::Bytes;
use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};

// The sizes and a variant's facts are part of an image's facts (`image.rs`), so the row can
// hold them without this file; re-exported here, where the renditions are made.
use super::image::{ImageFacts, ImageKind};
pub use super::image::{ImageSize, VariantFacts};

/// A variant made from an upload: its facts and its bytes.
#[derive(Debug, Clone)]
pub struct Variant {
    pub facts: VariantFacts,
    pub bytes: Bytes,
}

/// What an upload yields besides its facts.
#[derive(Debug, Clone, Default)]
pub struct Renditions {
    pub variants: Vec<Variant>,
    pub placeholder: Option<String>,
}

/// Makes the variants and the placeholder of `image` (as displayed), whose file is `original`.
pub fn renditions(image: &DynamicImage, original: &ImageFacts) -> anyhow::Result<Renditions> {
    let transparent = has_transparency(image);
    let mut variants = Vec::new();
    // Largest first, each made from the one before: resizing a 1280 px image to 640 is far
    // cheaper than resizing the 12 MP original again, and looks the same.
    let mut source = std::borrow::Cow::Borrowed(image);
    for size in ImageSize::VARIANTS.into_iter().rev() {
        let side = size.longest_side().expect("a variant size");
        let (width, height) = source.dimensions();
        if width.max(height) <= side {
            continue;
        }
        let resized = source.resize(side, side, FilterType::Triangle);
        let (kind, bytes) = encode(&resized, transparent)?;
        if (bytes.len() as u64) < original.byte_size {
            let (width, height) = resized.dimensions();
            variants.push(Variant {
                facts: VariantFacts {
                    size,
                    kind,
                    width,
                    height,
                    byte_size: bytes.len() as u64,
                },
                bytes,
            });
        }
        source = std::borrow::Cow::Owned(resized);
    }
    variants.reverse();
    let tiny = source.resize(32, 32, FilterType::Triangle).to_rgba8();
    let placeholder = blurhash::encode(4, 3, tiny.width(), tiny.height(), tiny.as_raw())
        .map_err(|e| anyhow::anyhow!("BlurHash: {e:?}"))?;
    Ok(Renditions {
        variants,
        placeholder: Some(placeholder),
    })
}

/// [`renditions`] on a blocking thread (resizing and encoding are CPU work).
pub async fn renditions_off_runtime(image: DynamicImage, original: ImageFacts) -> anyhow::Result<Renditions> {
    tokio::task::spawn_blocking(move || renditions(&image, &original))
        .await
        .map_err(|e| anyhow::anyhow!("variants task failed: {e}"))?
}

/// Whether any pixel is less than opaque. Read in place where the pixels are 8-bit RGBA or
/// grey + alpha (a 50-megapixel PNG is not copied just to look); other layouts with alpha are
/// converted first.
fn has_transparency(image: &DynamicImage) -> bool {
    match image {
        _ if !image.color().has_alpha() => false,
        DynamicImage::ImageRgba8(pixels) => pixels.pixels().any(|p| p.0[3] < 255),
        DynamicImage::ImageLumaA8(pixels) => pixels.pixels().any(|p| p.0[1] < 255),
        other => other.to_rgba8().pixels().any(|p| p.0[3] < 255),
    }
}

/// JPEG (quality 82) for opaque images, PNG where transparency must survive.
fn encode(image: &DynamicImage, transparent: bool) -> anyhow::Result<(ImageKind, Bytes)> {
    let mut out = Vec::new();
    if transparent {
        image
            .to_rgba8()
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))?;
        Ok((ImageKind::Png, Bytes::from(out)))
    } else {
        image
            .to_rgb8()
            .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82))?;
        Ok((ImageKind::Jpeg, Bytes::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::image::Sha256Hex;

    fn facts(width: u32, height: u32, byte_size: u64) -> ImageFacts {
        ImageFacts {
            kind: ImageKind::Png,
            width,
            height,
            byte_size,
            sha256: Sha256Hex::of(b"x"),
        }
    }

    fn noise(width: u32, height: u32, alpha: bool) -> DynamicImage {
        let mut state = 0x2545_f491_u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state & 0xff) as u8
        };
        if alpha {
            DynamicImage::ImageRgba8(image::RgbaImage::from_fn(width, height, |_, _| {
                image::Rgba([next(), next(), next(), 128])
            }))
        } else {
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |_, _| {
                image::Rgb([next(), next(), next()])
            }))
        }
    }

    #[test]
    fn sizes_fit_keep_the_ratio_and_never_upscale() {
        let image = noise(2000, 1000, false);
        let made = renditions(&image, &facts(2000, 1000, 6_000_000)).unwrap();
        let sizes: Vec<(ImageSize, u32, u32)> = made
            .variants
            .iter()
            .map(|v| (v.facts.size, v.facts.width, v.facts.height))
            .collect();
        assert_eq!(
            sizes,
            [
                (ImageSize::Thumb, 256, 128),
                (ImageSize::Small, 640, 320),
                (ImageSize::Medium, 1280, 640)
            ]
        );
        for variant in &made.variants {
            assert_eq!(variant.facts.kind, ImageKind::Jpeg);
            assert_eq!(image::guess_format(&variant.bytes).unwrap(), image::ImageFormat::Jpeg);
            assert_eq!(variant.facts.byte_size, variant.bytes.len() as u64);
        }
        let placeholder = made.placeholder.unwrap();
        assert!((20..40).contains(&placeholder.len()), "{placeholder}");
        blurhash::decode(&placeholder, 8, 8, 1.0).expect("a valid BlurHash");

        // A 500 px image has only a thumbnail; a 200 px one none (never upscaled).
        let small = renditions(&noise(500, 300, false), &facts(500, 300, 450_000)).unwrap();
        assert_eq!(
            small.variants.iter().map(|v| v.facts.size).collect::<Vec<_>>(),
            [ImageSize::Thumb]
        );
        let tiny = renditions(&noise(200, 100, false), &facts(200, 100, 60_000)).unwrap();
        assert!(tiny.variants.is_empty());
        assert!(tiny.placeholder.is_some(), "every image has a placeholder");
    }

    #[test]
    fn transparency_survives_as_png_and_no_variant_outweighs_the_original() {
        let clear = renditions(&noise(800, 800, true), &facts(800, 800, 5_000_000)).unwrap();
        assert!(clear.variants.iter().all(|v| v.facts.kind == ImageKind::Png));
        // An original smaller than any variant would be: nothing stored, the original serves.
        let lean = renditions(&noise(800, 800, false), &facts(800, 800, 1_000)).unwrap();
        assert!(
            lean.variants.is_empty(),
            "{:?}",
            lean.variants.iter().map(|v| v.facts.byte_size).collect::<Vec<_>>()
        );
    }

    #[test]
    fn sizes_are_named_as_clients_ask() {
        assert_eq!(ImageSize::parse("small"), Some(ImageSize::Small));
        assert_eq!(ImageSize::parse("THUMB"), Some(ImageSize::Thumb));
        assert_eq!(ImageSize::parse("med"), Some(ImageSize::Medium), "TheCatAPI's spelling");
        assert_eq!(ImageSize::parse("full"), None);
    }
}
