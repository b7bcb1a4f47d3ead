//! The offline detector on every fixture photo, and on the hostile-but-valid files of a cat
//! (renamed, EXIF-rotated, CMYK, greyscale, 16-bit, animated, WebP): the right verdict each.

use pawql::detectors::offline::{OfflineDetector, DEFAULT_CAT_THRESHOLD};

use crate::support::helpers::{fixture, manifest};

/// The hostile-but-valid variants of the cat photo (renamed, EXIF-rotated, CMYK, greyscale,
/// 16-bit, animated, WebP) in `bad-inputs/`.
const CAT_VARIANTS: [&str; 9] = [
    "png_named.jpg",
    "jpeg_as_png_ctype.jpg",
    "cat.webp",
    "exif_orientation_6.jpg",
    "exif_orientation_3.jpg",
    "cmyk.jpg",
    "grayscale.jpg",
    "rgb48_16bit.png",
    "animated.png",
];

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
    for file in CAT_VARIANTS {
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

/// The margins docs/scans.md states for the threshold (0.2): on the fixtures, cats (the photos
/// and the valid variants of the cat photo) score at least 0.43 and everything else at most
/// 0.012.
#[test]
fn the_readme_margins_around_the_threshold_hold_on_the_fixtures() {
    let detector = OfflineDetector::load(DEFAULT_CAT_THRESHOLD).unwrap();
    let mut cats = Vec::new();
    let mut rest = Vec::new();
    for row in manifest("images/MANIFEST.tsv") {
        let p = detector
            .classify(&fixture(&format!("images/{}", row["file"])))
            .unwrap()
            .cat_confidence;
        if row["expected"] == "cat" {
            cats.push(p)
        } else {
            rest.push(p)
        }
    }
    for file in CAT_VARIANTS {
        cats.push(
            detector
                .classify(&fixture(&format!("bad-inputs/{file}")))
                .unwrap()
                .cat_confidence,
        );
    }
    rest.push(
        detector
            .classify(&fixture("bad-inputs/tiny_1x1.png"))
            .unwrap()
            .cat_confidence,
    );
    let lowest_cat = cats.iter().copied().fold(f64::INFINITY, f64::min);
    let highest_other = rest.iter().copied().fold(0.0, f64::max);
    println!("P(cat): lowest cat {lowest_cat:.4}, highest other {highest_other:.4}");
    assert!(lowest_cat >= 0.43, "README: cats score >= 0.43; lowest {lowest_cat:.4}");
    assert!(
        highest_other <= 0.012,
        "README: the rest score <= 0.012; highest {highest_other:.4}"
    );
}
