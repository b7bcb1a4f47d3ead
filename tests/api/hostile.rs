//! Hostile files and arguments: each gets its contract answer and leaves nothing behind.
//! The contract is `tests/fixtures/README.md`; the bytes decide, not the claimed type.

use std::io::Cursor;

use rand::{Rng, SeedableRng};
use resolvers::domain::validation::UploadLimits;
use resolvers::CatalogSettings;
use serde_json::json;

use crate::support::helpers::{error_codes, fixture, manifest, spawn_app, Backend, TestApp};

/// Refused files and the code each must get.
const REFUSED: &[(&str, &str)] = &[
    ("empty.jpg", "INVALID_IMAGE"),
    ("truncated.jpg", "INVALID_IMAGE"),
    ("text_renamed.jpg", "INVALID_IMAGE"),
    ("polyglot_pngmagic_html.png", "INVALID_IMAGE"),
    ("svg_renamed.png", "UNSUPPORTED_MEDIA_TYPE"),
    ("cat.gif", "UNSUPPORTED_MEDIA_TYPE"),
    ("cat.tiff", "UNSUPPORTED_MEDIA_TYPE"),
    ("cat.bmp", "UNSUPPORTED_MEDIA_TYPE"),
    ("bomb_50000x50000_1bit.png", "IMAGE_TOO_LARGE"),
    ("bomb_header_50000x50000_rgba.png", "IMAGE_TOO_LARGE"),
];

/// Accepted files, the type their bytes have, and their displayed (EXIF-oriented) size.
pub(crate) const ACCEPTED: &[(&str, &str, u32, u32)] = &[
    ("png_named.jpg", "image/png", 451, 300),
    ("jpeg_as_png_ctype.jpg", "image/jpeg", 451, 300),
    ("cat.webp", "image/webp", 451, 300),
    ("cmyk.jpg", "image/jpeg", 451, 300),
    ("rgb48_16bit.png", "image/png", 451, 300),
    ("grayscale.jpg", "image/jpeg", 451, 300),
    ("animated.png", "image/png", 451, 300),
    ("exif_orientation_3.jpg", "image/jpeg", 451, 300),
    ("exif_orientation_6.jpg", "image/jpeg", 451, 300),
    ("tiny_1x1.png", "image/png", 1, 1),
];

fn claimed_type(file: &str) -> String {
    manifest("bad-inputs/MANIFEST.tsv")
        .into_iter()
        .find(|row| row["file"] == file)
        .map(|row| row["content_type_to_send"].clone())
        .unwrap_or_else(|| panic!("{file} is not in the manifest"))
}

#[tokio::test]
async fn every_bad_input_in_the_manifest_has_a_contract_answer_here() {
    let listed: Vec<String> = manifest("bad-inputs/MANIFEST.tsv")
        .into_iter()
        .map(|r| r["file"].clone())
        .collect();
    for file in &listed {
        let covered = REFUSED.iter().any(|(f, _)| f == file) || ACCEPTED.iter().any(|(f, ..)| f == file);
        assert!(covered, "{file} has no expected answer in this test");
    }
    assert_eq!(listed.len(), REFUSED.len() + ACCEPTED.len());
}

async fn refused_files_get_their_code_and_leave_nothing_behind(backend: Backend) {
    let app = spawn_app(backend).await;
    app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let before = app.residue().await;
    for (file, code) in REFUSED {
        let bytes = fixture(&format!("bad-inputs/{file}"));
        let (status, body) = app.upload_raw("cat", Some(0.7), file, &claimed_type(file), bytes).await;
        assert_eq!(error_codes(&body), vec![code.to_string()], "{file}: {status} {body}");
        assert_eq!(body["data"], json!(null), "{file}");
        assert_eq!(app.residue().await, before, "{file} left something behind");
    }
    app.assert_chunk_invariant().await;
}

on_both_backends!(refused_files_get_their_code_and_leave_nothing_behind);

async fn accepted_hostile_files_are_stored_as_what_their_bytes_are(backend: Backend) {
    let app = spawn_app(backend).await;
    for (file, content_type, width, height) in ACCEPTED {
        let bytes = fixture(&format!("bad-inputs/{file}"));
        let (status, body) = app.upload_raw("cat", None, file, &claimed_type(file), bytes).await;
        let image = &body["data"]["upload"];
        assert_eq!(status, 200, "{file}: {body}");
        assert_eq!(image["contentType"], *content_type, "{file}");
        assert_eq!(
            (image["width"].as_u64().unwrap(), image["height"].as_u64().unwrap()),
            (*width as u64, *height as u64),
            "{file}"
        );
    }
    assert_eq!(app.labels().await[0]["imageCount"], ACCEPTED.len());
    app.assert_chunk_invariant().await;
}

on_both_backends!(accepted_hostile_files_are_stored_as_what_their_bytes_are);

/// A valid JPEG of random noise (noise does not compress) of about `side`² × 3 / 4 bytes.
pub fn noise_jpeg(side: u32) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let pixels = image::RgbImage::from_fn(side, side, |_, _| image::Rgb(rng.random()));
    let mut out = Vec::new();
    pixels
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .unwrap();
    out
}

async fn a_valid_jpeg_over_the_byte_limit_is_payload_too_large_and_leaves_nothing(backend: Backend) {
    let limit = 256 * 1024;
    let settings = CatalogSettings {
        limits: UploadLimits {
            max_bytes: limit,
            ..UploadLimits::default()
        },
        ..CatalogSettings::default()
    };
    let app = TestApp::builder(backend).settings(settings).start().await;
    let before = app.residue().await;

    // Over the per-file limit but inside the request envelope: refused by the multipart parser.
    let slightly_over = noise_jpeg(460);
    assert!(
        slightly_over.len() > limit && slightly_over.len() < limit + 64 * 1024,
        "{}",
        slightly_over.len()
    );
    let (status, body) = app
        .upload_raw("cat", None, "big.jpg", "image/jpeg", slightly_over)
        .await;
    assert_eq!(
        (status, error_codes(&body)),
        (413, vec!["PAYLOAD_TOO_LARGE".to_owned()]),
        "{body}"
    );

    // Far over: refused from Content-Length before the body is read.
    let far_over = noise_jpeg(1000);
    let (status, body) = app.upload_raw("cat", None, "huge.jpg", "image/jpeg", far_over).await;
    assert_eq!(
        (status, error_codes(&body)),
        (413, vec!["PAYLOAD_TOO_LARGE".to_owned()]),
        "{body}"
    );

    // A chunked body with no Content-Length is cut off while it streams.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..40).map(|_| Ok(vec![b' '; 16 * 1024])).collect();
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_codes(&body), vec!["PAYLOAD_TOO_LARGE"]);

    assert_eq!(app.residue().await, before);
}

on_both_backends!(a_valid_jpeg_over_the_byte_limit_is_payload_too_large_and_leaves_nothing);

async fn hostile_arguments_are_bad_user_input_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.upload("dog", "images/dog_kde_golden.png", 0.5).await;
    let before = app.residue().await;
    let png = fixture("bad-inputs/tiny_1x1.png");
    for (label, weight) in [
        ("Cat", 0.5),
        ("cat\u{0}", 0.5),
        ("🐱", 0.5),
        ("cat'; DROP TABLE", 0.5),
        (&*"c".repeat(100_000), 0.5),
        ("cat", 0.0),
        ("cat", -0.5),
        ("cat", 1.0000001),
        ("cat", 1e308),
    ] {
        let (_, body) = app
            .upload_raw(label, Some(weight), "t.png", "image/png", png.clone())
            .await;
        assert_eq!(
            error_codes(&body),
            vec!["BAD_USER_INPUT"],
            "{:.20} {weight}: {body}",
            label
        );
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.len() < 300,
            "hostile input echoed at length: {} bytes",
            message.len()
        );
    }
    for count in [-1, 101, i32::MAX] {
        let (_, body) = app
            .graphql(
                "query($n: Int!) { randomImages(label: \"dog\", count: $n) { id } }",
                json!({ "n": count }),
            )
            .await;
        assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "count {count}");
    }
    assert_eq!(app.residue().await, before);
}

on_both_backends!(hostile_arguments_are_bad_user_input_and_change_nothing);

async fn malformed_requests_get_a_clear_error_not_a_crash(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = format!("{}/graphql", app.address);
    let not_json = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let body: serde_json::Value = not_json.json().await.unwrap();
    assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"]);

    // Syntax errors and unknown fields are the client's doing and say so.
    for query in ["{ labels {", "{ labels { nope } }", "{ randomImage(label: 5) { id } }"] {
        let (_, body) = app.graphql(query, json!({})).await;
        assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{query}: {body}");
    }

    // A multipart map pointing at a part that was never sent.
    let form = reqwest::multipart::Form::new()
        .text("operations", json!({ "query": "mutation($i: Upload!) { upload(label: \"cat\", image: $i) { id } }", "variables": { "i": null } }).to_string())
        .text("map", json!({ "7": ["variables.i"] }).to_string());
    let (status, body) = app.post_form("/graphql", form).await;
    assert_eq!(
        (status, error_codes(&body)),
        (400, vec!["BAD_USER_INPUT".to_owned()]),
        "{body}"
    );
    assert_eq!(app.residue().await.0, 0);
}

on_both_backends!(malformed_requests_get_a_clear_error_not_a_crash);

async fn aliased_bulk_reads_exceed_the_complexity_limit_before_any_read(backend: Backend) {
    let app = spawn_app(backend).await;
    app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let one = "randomImages(label: \"cat\", count: 100) { id base64 }";
    let (_, body) = app.graphql(&format!("{{ {one} }}"), json!({})).await;
    assert!(body.get("errors").is_none(), "a single full page is allowed: {body}");

    let reads_before = app.image_reads();
    let piled = format!("{{ a: {one} b: {one} c: {one} }}");
    let (_, body) = app.graphql(&piled, json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("complex"), "{body}");
    assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"]);
    assert_eq!(app.image_reads(), reads_before, "refused before any read");
}

on_both_backends!(aliased_bulk_reads_exceed_the_complexity_limit_before_any_read);

/// The codes a refused request may carry.
const REFUSAL_CODES: [&str; 6] = [
    "BAD_USER_INPUT",
    "INVALID_IMAGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "IMAGE_TOO_LARGE",
    "PAYLOAD_TOO_LARGE",
    "NOT_FOUND",
];

async fn ids_of_the_wrong_shape_and_odd_bodies_are_refused_cleanly(backend: Backend) {
    let app = spawn_app(backend).await;
    app.upload("dog", "images/dog_kde_golden.png", 0.5).await;
    let before = app.residue().await;
    let sha = "a".repeat(64);
    for id in [
        "",
        "cat",
        "cat-",
        "cat-xyz",
        &format!("cat-{}", "A".repeat(64)),
        &format!("lion-{sha}"),
        &format!("cat-{sha}-x"),
        "../../etc/passwd",
        "cat-\u{0}",
    ] {
        for (query, field) in [
            ("query($id: ID!) { image(id: $id) { id } }", "image"),
            (
                "mutation($id: ID!) { setWeight(id: $id, weight: 0.5) { id } }",
                "setWeight",
            ),
            ("mutation($id: ID!) { deleteImage(id: $id) }", "deleteImage"),
            ("mutation($id: ID!) { requestScan(imageId: $id) { id } }", "requestScan"),
            ("query($id: ID!) { scanResult(id: $id) { id } }", "scanResult"),
        ] {
            let (status, body) = app.graphql(query, json!({ "id": id })).await;
            assert_eq!(status, 200, "{field} {id:?}: {body}");
            assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{field} {id:?}: {body}");
        }
    }
    // Weights that JSON cannot carry as numbers, as strings: a type error, not a crash.
    for weight in [
        json!("NaN"),
        json!("Infinity"),
        json!(null),
        json!([0.5]),
        json!({ "w": 1 }),
    ] {
        let (_, body) = app
            .graphql(
                "mutation($w: Float) { setWeight(id: \"x\", weight: $w) { id } }",
                json!({ "w": weight }),
            )
            .await;
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{weight}: {body}");
    }
    // petAPI's form weight parses like a float: NaN and inf are refused by the domain.
    for weight in ["NaN", "inf", "-0", "1e-12", "0x1"] {
        let form = reqwest::multipart::Form::new()
            .text("label", "cat")
            .text("weight", weight)
            .part(
                "img",
                reqwest::multipart::Part::bytes(fixture("images/cat_chelsea.png")).file_name("c.png"),
            );
        let (status, body) = app.post_form("/upload", form).await;
        assert_eq!(
            (status, error_codes(&body)),
            (400, vec!["BAD_USER_INPUT".to_owned()]),
            "{weight}: {body}"
        );
    }
    // A JSON body far over the limit, and one nested ten thousand deep.
    let url = format!("{}/graphql", app.address);
    let huge = format!(
        "{{\"query\":\"{{ labels {{ label }} }}\",\"variables\":{{\"x\":\"{}\"}}}}",
        "x".repeat(12 * 1024 * 1024)
    );
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let deep = format!(
        "{{\"query\":\"{{ labels {{ label }} }}\",\"variables\":{{\"x\":{}{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let response = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (status, error_codes(&body)),
        (400, vec!["BAD_USER_INPUT".to_owned()]),
        "{body}"
    );
    assert_eq!(app.residue().await, before);
}

on_both_backends!(ids_of_the_wrong_shape_and_odd_bodies_are_refused_cleanly);

async fn mangled_multipart_requests_never_break_the_server(backend: Backend) {
    // Seeded mutation fuzzing of the multipart envelope: bytes flipped, cut, repeated or
    // dropped. Every answer is a clean success or a coded refusal, never a 5xx, and what
    // was stored is consistent.
    let app = spawn_app(backend).await;
    let boundary = "pawqlfuzzboundary";
    let valid = crate::support::helpers::multipart_body(
        boundary,
        "mutation($image: Upload!) { upload(label: \"cat\", image: $image) { id } }",
        &crate::random::png_number(7),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let url = format!("{}/graphql", app.address);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..CASES {
        let mut body = valid.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..body.len());
            match rng.random_range(0..4) {
                0 => body[at] = rng.random(),
                1 => body.truncate(at),
                2 => {
                    let end = (at + rng.random_range(1..64)).min(body.len());
                    let piece = body[at..end].to_vec();
                    body.splice(at..at, piece);
                }
                _ => {
                    let end = (at + rng.random_range(1..64)).min(body.len());
                    body.drain(at..end);
                }
            }
            if body.is_empty() {
                break;
            }
        }
        let response = app
            .client
            .post(&url)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(!status.is_server_error(), "round {round}: {status}");
        let answer: serde_json::Value = response.json().await.unwrap();
        let codes = error_codes(&answer);
        assert!(
            codes.iter().all(|c| REFUSAL_CODES.contains(&c.as_str())),
            "round {round}: {answer}"
        );
        if codes.is_empty() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        refused > CASES / 2,
        "most mangled requests are refused ({accepted} accepted)"
    );
    let (files, _, _, rows, _) = app.residue().await;
    assert_eq!(
        files, rows,
        "every stored object has its row, and no row lacks its object"
    );
    app.assert_chunk_invariant().await;
}

on_both_backends!(mangled_multipart_requests_never_break_the_server);

/// Mangled requests per backend in the multipart fuzz test.
const CASES: u32 = 150;
