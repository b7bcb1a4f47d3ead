//! The offline detector on every fixture photo, and on the hostile-but-valid files of a cat
//! (renamed, EXIF-rotated, CMYK, greyscale, 16-bit, animated, WebP): the right verdict each.

use pawql::detectors::offline::{OfflineDetector, DEFAULT_CAT_THRESHOLD};

use crate::helpers::{fixture, manifest};

#[test]
fn every_fixture_photo_gets_the_right_verdict() {
    let detector = OfflineDetector::load(DEFAULT_CAT_THRESHOLD).unwrap();
    let rows = manifest("images/MANIFEST.tsv");
    assert!(rows.len() >= 10);
    for row in rows {
        let file = &row["file"];
        let detection = detector.classify(&fixture(&format!("images/{file}"))).unwrap();
        let expected_cat = row["expected"] == "cat";
        assert_eq!(
            detection.is_cat, expected_cat,
            "{file}: P(cat) = {:.4}, top labels {:?}",
            detection.cat_confidence, detection.labels
        );
        assert!((0.0..=1.0).contains(&detection.cat_confidence));
    }
}

#[test]
fn valid_variants_of_the_cat_photo_are_read_as_cats() {
    let detector = OfflineDetector::load(DEFAULT_CAT_THRESHOLD).unwrap();
    for file in [
        "png_named.jpg",
        "jpeg_as_png_ctype.jpg",
        "cat.webp",
        "exif_orientation_6.jpg",
        "exif_orientation_3.jpg",
        "cmyk.jpg",
        "grayscale.jpg",
        "rgb48_16bit.png",
        "animated.png",
    ] {
        let detection = detector.classify(&fixture(&format!("bad-inputs/{file}"))).unwrap();
        assert!(
            detection.is_cat,
            "{file}: P(cat) = {:.4}, top labels {:?}",
            detection.cat_confidence, detection.labels
        );
    }
    let blank = detector.classify(&fixture("bad-inputs/tiny_1x1.png")).unwrap();
    assert!(!blank.is_cat, "a 1x1 white pixel is no cat: {blank:?}");
}
