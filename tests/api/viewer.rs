//! The pet viewer (`GET /`) in headless Chromium: load it on a phone-sized screen, upload a
//! fixture, see it, scan it, see the verdict arrive, draw a random pet. The browser side is
//! `tests/browser/viewer.mjs` (playwright-core driving Debian's /usr/bin/chromium); the
//! screenshot is kept in `target/test-artifacts/` for people to look at.

use serde_json::Value;

use crate::support::helpers::{fixtures_dir, Backend, TestApp};

/// Runs the browser side against `address` (opening `/{query}`); what it saw, and the
/// screenshot it left.
async fn in_chromium(address: &str, name: &str, query: &str) -> (Value, std::path::PathBuf) {
    let root = env!("CARGO_MANIFEST_DIR");
    let artifacts = std::path::Path::new(root).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join(format!("viewer-{name}.png"));
    let _ = std::fs::remove_file(&screenshot);
    let photo = fixtures_dir().join("images/cat_chelsea.png");
    let args = vec![
        "tests/browser/viewer.mjs".to_owned(),
        address.to_owned(),
        photo.display().to_string(),
        screenshot.display().to_string(),
        query.to_owned(),
    ];
    let seen = crate::support::helpers::run_node_json("node", args).await;
    (seen, screenshot)
}

async fn the_viewer_uploads_scans_and_shows_a_cat_in_a_real_browser(backend: Backend) {
    // The page as a first-time user opens it: no key typed in, on a server with none.
    let app = TestApp::builder(backend).without_keys().start().await;
    let (seen, screenshot) = in_chromium(&app.address, &format!("{backend:?}").to_lowercase(), "").await;

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

/// Where WebSockets are missing (the deployed API), the page follows the scan over
/// Server-Sent Events instead (`?transport=events` makes it start there, as it ends up on AWS).
#[tokio::test]
async fn the_viewer_follows_a_scan_over_server_sent_events() {
    let app = TestApp::builder(Backend::Embedded).without_keys().start().await;
    let (seen, _) = in_chromium(&app.address, "events", "?transport=events").await;
    assert!(seen["verdict"].as_str().unwrap().contains("A cat!"), "{seen}");
    assert_eq!(seen["verdictVia"], "events", "{seen}");
    assert_eq!(seen["pageErrors"], serde_json::json!([]), "{seen}");
}

/// On AWS the page is told where streams open (the stream function's URL, `PAWQL_STREAM_URL`),
/// escaped, with the `/` its links resolve against.
#[tokio::test]
async fn the_viewer_is_told_the_stream_url() {
    let options = pawql::server::ServerOptions {
        stream_url: Some("https://abc123.lambda-url.eu-west-1.on.aws".into()),
        ..pawql::server::ServerOptions::default()
    };
    let app = TestApp::builder(Backend::Embedded).options(options).start().await;
    let page = crate::playground::page(&app, "/").await;
    assert!(
        page.contains(r#"<meta name="pawql-stream-url" content="https://abc123.lambda-url.eu-west-1.on.aws/">"#),
        "{}",
        &page[..600]
    );
    let plain = TestApp::builder(Backend::Embedded).without_keys().start().await;
    let page = crate::playground::page(&plain, "/").await;
    assert!(
        page.contains(r#"<meta name="pawql-stream-url" content="">"#),
        "here, by default"
    );
}
