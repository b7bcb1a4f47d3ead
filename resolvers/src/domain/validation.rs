//! Upload validation: the bytes decide, never the client's Content-Type or file name.
//!
//! Order matters for safety:
//! 1. size (cheap), 2. format by magic bytes (only JPEG, PNG, WebP pass),
//! 3. dimensions from the header, refused above the pixel cap **before** any pixel is
//!    decoded (decompression bombs), 4. a strict full decode (a cut JPEG is an error: the
//!    `image` crate's JPEG path is lenient, so JPEG goes through zune-jpeg in strict mode),
//! 5. width/height as displayed, after EXIF orientation.

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader, Limits};

use super::image::{ImageFacts, ImageKind, Sha256Hex};
use crate::error::{ApiError, ApiResult};

/// Default cap on an upload's bytes (10 MiB).
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;
/// Default cap on an image's pixels: 50 MP covers 48 MP phone photos.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// What an upload may weigh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    pub max_bytes: usize,
    pub max_pixels: u64,
}

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// Checks that `bytes` are one whole, decodable JPEG, PNG or WebP within the limits,
/// and returns what the bytes say about themselves. CPU-bound: call it off the async runtime.
pub fn validate_image(bytes: &[u8], limits: &UploadLimits) -> ApiResult<ImageFacts> {
    Ok(decode_image(bytes, limits)?.0)
}

/// [`validate_image`], and the image itself as displayed (EXIF orientation applied): what
/// the sized variants are made from (`variants.rs`), without decoding the bytes twice.
pub fn decode_image(bytes: &[u8], limits: &UploadLimits) -> ApiResult<(ImageFacts, image::DynamicImage)> {
    if bytes.is_empty() {
        return Err(ApiError::InvalidImage("the upload is empty".into()));
    }
    if bytes.len() > limits.max_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "the upload has {} bytes; the limit is {}",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let kind = sniff_kind(bytes)?;
    let format = match kind {
        ImageKind::Jpeg => ImageFormat::Jpeg,
        ImageKind::Png => ImageFormat::Png,
        ImageKind::WebP => ImageFormat::WebP,
    };

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits(limits));
    let mut decoder = reader.into_decoder().map_err(|e| image_error(kind, e))?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limits)?;
    let orientation = decoder.orientation().map_err(|e| image_error(kind, e))?;

    let mut decoded =
        match kind {
            ImageKind::Jpeg => {
                drop(decoder);
                let rgb = decode_jpeg_strictly(bytes, width, height)?;
                image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(width, height, rgb).ok_or_else(|| {
                    ApiError::InvalidImage("JPEG decodes to fewer pixels than its header says".into())
                })?)
            }
            ImageKind::Png | ImageKind::WebP => {
                image::DynamicImage::from_decoder(decoder).map_err(|e| image_error(kind, e))?
            }
        };
    decoded.apply_orientation(orientation);

    let (width, height) = if swaps_axes(orientation) {
        (height, width)
    } else {
        (width, height)
    };
    let facts = ImageFacts {
        kind,
        width,
        height,
        byte_size: bytes.len() as u64,
        sha256: Sha256Hex::of(bytes),
    };
    Ok((facts, decoded))
}

/// Names the format by its magic bytes. Other image formats are "unsupported"; anything
/// that is not an image at all (text, HTML, nothing recognisable) is "invalid".
fn sniff_kind(bytes: &[u8]) -> ApiResult<ImageKind> {
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => return Ok(ImageKind::Jpeg),
        Ok(ImageFormat::Png) => return Ok(ImageKind::Png),
        Ok(ImageFormat::WebP) => return Ok(ImageKind::WebP),
        Ok(other) => return Err(unsupported(other.to_mime_type())),
        Err(_) => {}
    }
    let sniffed = file_format::FileFormat::from_bytes(bytes);
    if sniffed.kind() == file_format::Kind::Image {
        Err(unsupported(sniffed.media_type()))
    } else {
        Err(ApiError::InvalidImage(format!(
            "the bytes are not an image (they look like {})",
            sniffed.media_type()
        )))
    }
}

fn unsupported(media_type: &str) -> ApiError {
    ApiError::UnsupportedMediaType(format!("{media_type} is not accepted; send JPEG, PNG or WebP"))
}

fn check_pixels(width: u32, height: u32, limits: &UploadLimits) -> ApiResult<()> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ApiError::ImageTooLarge(format!(
            "{width}x{height} is {pixels} pixels; the limit is {}",
            limits.max_pixels
        )));
    }
    if pixels == 0 {
        return Err(ApiError::InvalidImage(format!("{width}x{height} has no pixels")));
    }
    Ok(())
}

/// Decoder limits as a second line of defence behind [`check_pixels`]: 16-bit RGBA at the cap.
fn decoder_limits(limits: &UploadLimits) -> Limits {
    let mut decoder_limits = Limits::default();
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    decoder_limits
}

/// zune-jpeg in strict mode refuses data that ends before the image does. The pixels, as RGB.
fn decode_jpeg_strictly(bytes: &[u8], width: u32, height: u32) -> ApiResult<Vec<u8>> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(width as usize)
        .set_max_height(height as usize)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode()
        .map_err(|e| ApiError::InvalidImage(format!("JPEG does not decode cleanly: {e:?}")))
}

fn image_error(kind: ImageKind, err: image::ImageError) -> ApiError {
    match err {
        image::ImageError::Limits(e) => ApiError::ImageTooLarge(e.to_string()),
        other => ApiError::InvalidImage(format!("{} does not decode: {other}", kind.content_type())),
    }
}

fn swaps_axes(orientation: image::metadata::Orientation) -> bool {
    use image::metadata::Orientation::*;
    matches!(orientation, Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
}

/// [`decode_image`] on a blocking thread: the facts, and the image its variants are made from
/// (`variants::renditions_off_runtime`), so an upload decodes its bytes once.
pub async fn decode_image_off_runtime(
    bytes: &bytes::Bytes,
    limits: UploadLimits,
) -> ApiResult<(ImageFacts, image::DynamicImage)> {
    let checked = bytes.clone();
    tokio::task::spawn_blocking(move || decode_image(&checked, &limits))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("validation task failed: {e}")))?
}

/// [`validate_image`] on a blocking thread: decoding is CPU work that must not stall the
/// async runtime. Every door that takes image bytes validates through this.
pub async fn validate_image_off_runtime(bytes: &bytes::Bytes, limits: UploadLimits) -> ApiResult<ImageFacts> {
    let checked = bytes.clone();
    tokio::task::spawn_blocking(move || validate_image(&checked, &limits))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("validation task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(width, height)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_small_png_is_accepted_with_its_facts() {
        let bytes = png(3, 2);
        let facts = validate_image(&bytes, &UploadLimits::default()).unwrap();
        assert_eq!((facts.kind, facts.width, facts.height), (ImageKind::Png, 3, 2));
        assert_eq!(facts.byte_size, bytes.len() as u64);
        assert_eq!(facts.sha256, Sha256Hex::of(&bytes));
    }

    #[test]
    fn pixel_cap_is_applied_from_the_header() {
        let limits = UploadLimits {
            max_pixels: 5,
            ..UploadLimits::default()
        };
        let err = validate_image(&png(3, 2), &limits).unwrap_err();
        assert_eq!(err.code(), "IMAGE_TOO_LARGE");
    }

    #[test]
    fn byte_cap_is_payload_too_large() {
        let limits = UploadLimits {
            max_bytes: 10,
            ..UploadLimits::default()
        };
        assert_eq!(
            validate_image(&png(3, 2), &limits).unwrap_err().code(),
            "PAYLOAD_TOO_LARGE"
        );
    }

    #[test]
    fn a_png_cut_short_is_invalid() {
        let bytes = png(64, 64);
        let err = validate_image(&bytes[..bytes.len() / 2], &UploadLimits::default()).unwrap_err();
        assert_eq!(err.code(), "INVALID_IMAGE", "{err}");
    }
}
