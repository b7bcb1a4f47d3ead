//! Turning image bytes into the classifier's input, as `models/PROVENANCE.md` prescribes:
//! EXIF orientation applied, RGB8 with any alpha composited onto white, shorter side resized
//! to 256 (bilinear), centre crop 224×224, NCHW f32 with raw 0–255 values.
//!
//! Every accepted upload format decodes here: JPEG (also CMYK and greyscale), PNG (also 16-bit,
//! RGBA, APNG's first frame) and WebP.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Rgb, RgbImage};

/// The classifier's input side.
pub const INPUT_SIZE: u32 = 224;
/// The shorter side before the centre crop.
const RESIZE_SHORTER_TO: u32 = 256;

/// Decodes `bytes` upright (EXIF orientation applied).
pub fn decode_upright(bytes: &[u8]) -> anyhow::Result<DynamicImage> {
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut image = DynamicImage::from_decoder(decoder)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// RGB8 with transparency composited onto white, so a transparent background reads the same
/// whatever colour hides under the alpha channel.
pub fn to_rgb_on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let alpha = u16::from(a);
        let over_white = |c: u8| ((u16::from(c) * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
        Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

/// Shorter side to 256, then the centre 224×224.
pub fn resize_and_crop(image: &RgbImage) -> RgbImage {
    let (w, h) = image.dimensions();
    let scale = f64::from(RESIZE_SHORTER_TO) / f64::from(w.min(h));
    let new_w = ((f64::from(w) * scale).round() as u32).max(INPUT_SIZE);
    let new_h = ((f64::from(h) * scale).round() as u32).max(INPUT_SIZE);
    let resized = image::imageops::resize(image, new_w, new_h, FilterType::Triangle);
    let left = (new_w - INPUT_SIZE) / 2;
    let top = (new_h - INPUT_SIZE) / 2;
    image::imageops::crop_imm(&resized, left, top, INPUT_SIZE, INPUT_SIZE).to_image()
}

/// The NCHW f32 planes (R, then G, then B), values 0–255.
pub fn to_nchw(image: &RgbImage) -> Vec<f32> {
    let plane = (INPUT_SIZE * INPUT_SIZE) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = f32::from(pixel.0[c]);
        }
    }
    out
}

/// Bytes → classifier input.
pub fn classifier_input(bytes: &[u8]) -> anyhow::Result<Vec<f32>> {
    let image = decode_upright(bytes)?;
    Ok(to_nchw(&resize_and_crop(&to_rgb_on_white(&image))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparent_pixels_become_white_and_opaque_ones_keep_their_colour() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([10, 20, 30, 0]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let rgb = to_rgb_on_white(&DynamicImage::ImageRgba8(rgba));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(1, 0).0, [10, 20, 30]);
    }

    #[test]
    fn any_aspect_ratio_ends_as_a_centred_224_square() {
        for (w, h) in [(451, 300), (300, 451), (224, 224), (1000, 80)] {
            let cropped = resize_and_crop(&RgbImage::new(w, h));
            assert_eq!(cropped.dimensions(), (INPUT_SIZE, INPUT_SIZE), "{w}x{h}");
        }
    }
}
