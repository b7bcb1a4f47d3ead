//! The pet viewer (`GET /`) in headless Chromium: load it on a phone-sized screen, upload a
//! fixture, see it, scan it, see the verdict arrive, draw a random pet. The browser side is
//! `tests/browser/viewer.mjs` (playwright-core driving Debian's /usr/bin/chromium); the
//! screenshot is kept in `target/test-artifacts/` for people to look at.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{fixtures_dir, spawn_open_app, Backend};

async fn the_viewer_uploads_scans_and_shows_a_cat_in_a_real_browser(backend: Backend) {
    // The page as a first-time user opens it: no key typed in, on a server with none.
    let app = spawn_open_app(backend).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let artifacts = std::path::Path::new(root).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join(format!("viewer-{backend:?}.png").to_lowercase());
    let _ = std::fs::remove_file(&screenshot);
    let photo = fixtures_dir().join("images/cat_chelsea.png");
    let base = app.address.clone();
    let shot = screenshot.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("tests/browser/viewer.mjs")
            .arg(base)
            .arg(photo)
            .arg(shot)
            .current_dir(root)
            .output()
            .expect("running node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));

    assert_eq!(seen["labels"], serde_json::json!(["cat", "dog"]), "{seen}");
    assert!(
        seen["emptyNote"].as_str().unwrap().contains("No cat pictures yet"),
        "{seen}"
    );
    assert!(seen["uploadedCaption"].as_str().unwrap().contains("451×300"), "{seen}");
    assert!(seen["verdict"].as_str().unwrap().contains("A cat!"), "{seen}");
    assert!(seen["scanStatus"].as_str().unwrap().ends_with("SUCCEEDED"), "{seen}");
    assert_eq!(
        seen["verdictVia"], "subscription",
        "the local server streams it: {seen}"
    );
    assert!(seen["randomCaption"].as_str().unwrap().starts_with("cat-"), "{seen}");
    assert_eq!(seen["pageErrors"], serde_json::json!([]), "{seen}");
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "a real screenshot"
    );
}

on_both_backends!(the_viewer_uploads_scans_and_shows_a_cat_in_a_real_browser);
