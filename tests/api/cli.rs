//! The CLI end to end: the real `pawql` binary (`upload`, `random`, `scan`, `results`) against
//! a real test server, as a user at a terminal would run it.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::helpers::{fixture, fixtures_dir, manifest, spawn_app, Backend, TestApp};

/// Runs `pawql <args>` against `app` (with `--endpoint`), off the async runtime.
async fn pawql(app: &TestApp, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pawql"));
    command
        .args(args)
        .arg("--endpoint")
        .arg(format!("{}/graphql", app.address));
    command.env_remove("PAWQL_API_KEY");
    if let Some(key) = &app.key {
        command.arg("--api-key").arg(key);
    }
    tokio::task::spawn_blocking(move || command.output().expect("running pawql"))
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A folder holding every fixture photo, one file that is not an image, and one note.
fn photo_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for row in manifest("images/MANIFEST.tsv") {
        let file = &row["file"];
        std::fs::write(dir.path().join(file), fixture(&format!("images/{file}"))).unwrap();
    }
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::copy(
        fixtures_dir().join("bad-inputs/text_renamed.jpg"),
        dir.path().join("more/not_really.jpg"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not scanned").unwrap();
    dir
}

async fn bulk_scan_of_a_folder_then_results_gives_every_photo_its_verdict(backend: Backend) {
    let app = spawn_app(backend).await;
    let photos = photo_folder();
    let out = tempfile::tempdir().unwrap();
    let batch_file = out.path().join("batches/first.json");
    let folder = photos.path().to_str().unwrap();

    let scan = pawql(&app, &["scan", folder, "--batch-file", batch_file.to_str().unwrap()]).await;
    let (stdout, stderr) = (text(&scan.stdout), text(&scan.stderr));
    // One file is not an image: reported, recorded, and the exit status says so; the rest go on.
    assert_eq!(scan.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("not_really.jpg\tFAILED\tINVALID_IMAGE"), "{stderr}");
    assert!(stderr.contains("skipping 1 files"), "{stderr}");
    let photos_expected = manifest("images/MANIFEST.tsv");
    assert!(
        stdout.contains(&format!(
            "submitted {} of {} files",
            photos_expected.len(),
            photos_expected.len() + 1
        )),
        "{stdout}"
    );

    // The batch file: one entry per file, ice-cat-wrangler's fields, the scan id = the hash.
    let batch: Vec<Value> = serde_json::from_slice(&std::fs::read(&batch_file).unwrap()).unwrap();
    assert_eq!(batch.len(), photos_expected.len() + 1);
    for entry in &batch {
        for field in [
            "file",
            "file_image_hash",
            "batch_id",
            "original_file_name",
            "upload_time",
            "epoch_timestamp",
        ] {
            assert!(entry.get(field).is_some(), "{field} missing in {entry}");
        }
        if entry["original_file_name"] == "not_really.jpg" {
            assert!(entry["scanId"].is_null() && entry["error"].as_str().unwrap().starts_with("INVALID_IMAGE"));
        } else {
            let row = photos_expected
                .iter()
                .find(|r| r["file"] == entry["original_file_name"])
                .unwrap();
            assert_eq!(entry["file_image_hash"], row["sha256"].as_str(), "{entry}");
            assert_eq!(
                entry["scanId"],
                row["sha256"].as_str(),
                "the scan id is the bytes' hash"
            );
        }
    }

    // Results: every photo gets the verdict the manifest expects.
    let results = pawql(
        &app,
        &["results", batch_file.to_str().unwrap(), "--json", "--wait", "120"],
    )
    .await;
    assert!(results.status.success(), "{}", text(&results.stderr));
    let results: Vec<Value> = serde_json::from_slice(&results.stdout).unwrap();
    assert_eq!(results.len(), batch.len());
    for result in &results {
        let file = result["file"].as_str().unwrap();
        if file.ends_with("not_really.jpg") {
            assert_eq!(result["status"], "NOT_SUBMITTED", "{result}");
            continue;
        }
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        let row = photos_expected.iter().find(|r| r["file"] == name).unwrap();
        assert_eq!(result["status"], "SUCCEEDED", "{result}");
        assert_eq!(result["isCat"], row["expected"] == "cat", "{result}");
    }

    // The table, for people.
    let table = pawql(&app, &["results", batch_file.to_str().unwrap()]).await;
    let table = text(&table.stdout);
    assert!(table.starts_with("FILE"), "{table}");
    let cats = photos_expected.iter().filter(|r| r["expected"] == "cat").count();
    assert!(
        table.contains(&format!(
            "{} files: {} scanned, {cats} with a cat",
            batch.len(),
            photos_expected.len()
        )),
        "{table}"
    );
}

on_both_backends!(bulk_scan_of_a_folder_then_results_gives_every_photo_its_verdict);

#[tokio::test]
async fn upload_reports_each_file_and_random_saves_what_was_uploaded() {
    let app = spawn_app(Backend::Embedded).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("tabby.jpg");
    std::fs::write(&good, fixture("images/cat_kde_tabby_q85.jpg")).unwrap();
    let bad = dir.path().join("fake.jpg");
    std::fs::copy(fixtures_dir().join("bad-inputs/text_renamed.jpg"), &bad).unwrap();
    let missing = dir.path().join("missing.jpg");

    let upload = pawql(
        &app,
        &[
            "upload",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
            missing.to_str().unwrap(),
            "--label",
            "cat",
            "--weight",
            "0.7",
        ],
    )
    .await;
    let (stdout, stderr) = (text(&upload.stdout), text(&upload.stderr));
    assert_eq!(upload.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("tabby.jpg\tcat-") && stdout.contains("weight 0.7"),
        "{stdout}"
    );
    assert!(stderr.contains("fake.jpg\tFAILED\tINVALID_IMAGE"), "{stderr}");
    assert!(stderr.contains("missing.jpg\tFAILED\tcannot read"), "{stderr}");
    assert!(stderr.contains("2 of 3 files failed"), "{stderr}");
    assert_eq!(
        app.labels().await[0]["imageCount"],
        1,
        "the good file went in, the others left nothing"
    );

    let saved = dir.path().join("saved");
    let random = pawql(
        &app,
        &[
            "random",
            "--label",
            "cat",
            "--count",
            "3",
            "-o",
            saved.to_str().unwrap(),
        ],
    )
    .await;
    assert!(random.status.success(), "{}", text(&random.stderr));
    let paths: Vec<String> = text(&random.stdout).lines().map(str::to_owned).collect();
    assert_eq!(paths.len(), 3, "three draws");
    for path in &paths {
        assert!(path.ends_with(".jpg"), "{path}");
        assert_eq!(std::fs::read(path).unwrap(), fixture("images/cat_kde_tabby_q85.jpg"));
    }

    let listing = pawql(&app, &["random", "--label", "dog"]).await;
    assert!(listing.status.success());
    assert!(text(&listing.stderr).contains("no images under `dog` yet"));
}

#[tokio::test]
async fn the_cli_sends_its_api_key_and_says_clearly_when_it_has_none() {
    use pawql::server::{Access, ServerOptions};
    let options = ServerOptions {
        access: Access::new(vec!["cli-key".to_owned()], Vec::new(), true),
        ..ServerOptions::default()
    };
    let app = TestApp::builder(Backend::Embedded).options(options).start().await;
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("cat.png");
    std::fs::write(&photo, fixture("images/cat_chelsea.png")).unwrap();

    let refused = pawql(&app, &["upload", photo.to_str().unwrap()]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("UNAUTHENTICATED"),
        "{}",
        text(&refused.stderr)
    );
    let accepted = pawql(&app, &["upload", photo.to_str().unwrap(), "--api-key", "cli-key"]).await;
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
}

/// A file too large to arrive in one Lambda request goes through the presigned path.
async fn the_cli_uploads_a_large_file_through_the_presigned_path(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let big = crate::lambda::noise_png(1400, 1200);
    assert!(big.len() > pawql::cli::DIRECT_UPLOAD_BYTES, "{}", big.len());
    let photo = dir.path().join("big.png");
    std::fs::write(&photo, &big).unwrap();
    let output = pawql(
        &app,
        &["upload", photo.to_str().unwrap(), "--label", "dog", "--weight", "0.3"],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let line = text(&output.stdout);
    assert!(line.contains("(presigned)"), "{line}");
    let id = line.split('\t').nth(1).unwrap().to_owned();
    let q = "query($id: ID!) { image(id: $id) { byteSize weight } }";
    let image = app.data(q, serde_json::json!({ "id": id })).await;
    assert_eq!(
        image["image"],
        serde_json::json!({ "byteSize": big.len(), "weight": 0.3 })
    );
    assert_eq!(app.staged_files().await, 0, "the staged file is gone once filed");
}

on_both_backends!(the_cli_uploads_a_large_file_through_the_presigned_path);
