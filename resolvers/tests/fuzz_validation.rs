//! Property-based fuzzing of upload validation (proptest): arbitrary bytes, and real photos
//! with bytes flipped, cut or spliced, never panic, and either pass with facts that are true of
//! the bytes or are refused with one of the contract's codes.
//!
//! The default 256 cases per property run in the test command; `scripts/fuzz` runs many more
//! (`PROPTEST_CASES`). A failure is shrunk to a minimal input and its seed saved in
//! `resolvers/proptest-regressions/fuzz_validation.txt` — commit that file: it is replayed first
//! on every later run. (Set explicitly: proptest's default looks for a `lib.rs` beside the
//! source, finds none for a file under `tests/`, and would write next to this file instead.)

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use resolvers::domain::image::Sha256Hex;
use resolvers::domain::validation::{validate_image, UploadLimits};

/// The error codes validation may answer with.
const CODES: [&str; 5] = [
    "INVALID_IMAGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "IMAGE_TOO_LARGE",
    "PAYLOAD_TOO_LARGE",
    "BAD_USER_INPUT",
];

fn fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    [
        "images/cat_kde_tabby_q85.jpg",
        "images/cat_chelsea.png",
        "images/dog_farm_german_shepherd.webp",
        "bad-inputs/exif_orientation_6.jpg",
    ]
    .iter()
    .map(|f| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("fixture {f}: {e}")))
    .collect()
}

/// Where a failing case's seed is kept, relative to the package root (cargo runs tests there).
const REGRESSIONS: &str = "proptest-regressions/fuzz_validation.txt";

fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    }
}

#[test]
fn failing_cases_are_kept_where_the_readme_says() {
    let persistence = config().failure_persistence.unwrap();
    let file = persistence.as_any().downcast_ref::<FileFailurePersistence>();
    assert_eq!(file, Some(&FileFailurePersistence::Direct(REGRESSIONS)));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        std::env::current_dir().unwrap(),
        root,
        "Direct paths are relative to the working directory"
    );
}

fn limits() -> UploadLimits {
    // Small enough that fuzzed headers claiming huge sizes hit the caps, not the memory.
    UploadLimits {
        max_bytes: 2 * 1024 * 1024,
        max_pixels: 4_000_000,
    }
}

/// Validates and checks the outcome is one the contract allows.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match validate_image(bytes, &limits()) {
        Ok(facts) => {
            prop_assert_eq!(facts.byte_size, bytes.len() as u64);
            prop_assert_eq!(facts.sha256, Sha256Hex::of(bytes));
            prop_assert!(facts.width > 0 && facts.height > 0);
            prop_assert!(u64::from(facts.width) * u64::from(facts.height) <= limits().max_pixels);
        }
        Err(err) => prop_assert!(CODES.contains(&err.code()), "unexpected code {}", err.code()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_refused_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_behind_a_real_magic_number_are_refused_cleanly(
        magic in prop::sample::select(vec![
            &b"\xFF\xD8\xFF\xE0"[..],
            &b"\x89PNG\r\n\x1a\n"[..],
            &b"RIFF\x00\x00\x00\x00WEBPVP8 "[..],
        ]),
        rest in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let bytes = [magic, &rest[..]].concat();
        check(&bytes)?;
    }

    #[test]
    fn damaged_photos_are_refused_or_read_truthfully(
        which in 0usize..4,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..24),
        cut in prop::option::of(any::<prop::sample::Index>()),
        splice in prop::option::of((any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..256))),
    ) {
        let all = fixtures();
        let mut bytes = all[which % all.len()].clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some((at, chunk)) = splice {
            let i = at.index(bytes.len());
            bytes.splice(i..i, chunk);
        }
        if let Some(at) = cut {
            bytes.truncate(at.index(bytes.len()));
        }
        check(&bytes)?;
    }
}
