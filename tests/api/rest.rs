//! petAPI's REST routes: its README's curl commands work against pawql unchanged.

use resolvers::domain::validation::UploadLimits;
use resolvers::CatalogSettings;

use crate::hostile::noise_jpeg;
use crate::support::helpers::{error_codes, fixture, spawn_app, Backend, TestApp};

async fn petapi_upload_then_random_returns_the_bytes_with_their_type(backend: Backend) {
    let app = spawn_app(backend).await;
    // curl -X POST $HOST/upload -F "label=cat" -F "img=@image.jpg" -F "weight=0.54321"
    let bytes = fixture("images/cat_kde_tabby_q85.jpg");
    let (status, body) = app
        .petapi_upload("cat", "image.jpg", bytes.clone(), Some("0.54321"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["weight"], 0.54321);
    assert_eq!(body["contentType"], "image/jpeg");

    // curl "$HOST/random?label=cat"
    let response = app
        .client
        .get(format!("{}/random?label=cat", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
    app.assert_chunk_invariant().await;
}

on_both_backends!(petapi_upload_then_random_returns_the_bytes_with_their_type);

async fn petapi_routes_refuse_bad_input_clearly_and_leave_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.residue().await;
    let cases = [
        ("cat", "text_renamed.jpg", "0.5", 422, "INVALID_IMAGE"),
        ("cat", "cat.gif", "0.5", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("cat", "tiny_1x1.png", "heavy", 400, "BAD_USER_INPUT"),
        ("cat", "tiny_1x1.png", "1.5", 400, "BAD_USER_INPUT"),
        ("horse", "tiny_1x1.png", "0.5", 400, "BAD_USER_INPUT"),
    ];
    for (label, file, weight, status, code) in cases {
        let bytes = fixture(&format!("bad-inputs/{file}"));
        let (got_status, body) = app.petapi_upload(label, file, bytes, Some(weight)).await;
        assert_eq!(
            (got_status, error_codes(&body)),
            (status, vec![code.to_owned()]),
            "{file} {weight}"
        );
    }
    let missing_img = reqwest::multipart::Form::new().text("label", "cat");
    let (status, body) = app.post_form("/upload", missing_img).await;
    assert_eq!(
        (status, error_codes(&body)),
        (400, vec!["BAD_USER_INPUT".to_owned()]),
        "{body}"
    );
    assert_eq!(app.residue().await, before);

    let empty = app
        .client
        .get(format!("{}/random?label=dog", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 404);
    let no_label = app.client.get(format!("{}/random", app.address)).send().await.unwrap();
    assert_eq!(no_label.status(), 400);
}

on_both_backends!(petapi_routes_refuse_bad_input_clearly_and_leave_nothing);

async fn petapi_upload_over_the_byte_limit_is_payload_too_large(backend: Backend) {
    let limits = UploadLimits {
        max_bytes: 256 * 1024,
        ..UploadLimits::default()
    };
    let app = TestApp::builder(backend)
        .settings(CatalogSettings {
            limits,
            ..CatalogSettings::default()
        })
        .start()
        .await;
    // Just over the file limit (refused by validation), and far over (refused by the body limit).
    for side in [460, 1000] {
        let (status, body) = app.petapi_upload("cat", "big.jpg", noise_jpeg(side), None).await;
        assert_eq!(
            (status, error_codes(&body)),
            (413, vec!["PAYLOAD_TOO_LARGE".to_owned()]),
            "side {side}"
        );
    }
    assert_eq!(app.residue().await.0, 0);
}

on_both_backends!(petapi_upload_over_the_byte_limit_is_payload_too_large);

async fn petapi_readme_curl_commands_work_unchanged_with_the_host_swapped(backend: Backend) {
    // petAPI had no keys: its users' commands run against a server with none (the local default).
    let app = TestApp::builder(backend).without_keys().start().await;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image.jpg");
    std::fs::write(&image, fixture("images/cat_kde_tabby_q85.jpg")).unwrap();
    let host = app.address.clone();
    let image_arg = format!("img=@{}", image.display());
    let pet = dir.path().join("pet");
    let pet_arg = pet.to_str().unwrap().to_owned();
    // petAPI's README, with https://…/Prod swapped for the server's address:
    //   curl -X POST $HOST/upload -F "label=cat" -F "img=@/path/to/your/image.jpg" -F "weight=0.54321"
    //   curl "$HOST/random?label=cat"
    let (upload, random) = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            std::process::Command::new("curl")
                .args(args)
                .output()
                .expect("running curl")
        };
        let upload = run(&[
            "-sS",
            "-X",
            "POST",
            &format!("{host}/upload"),
            "-F",
            "label=cat",
            "-F",
            &image_arg,
            "-F",
            "weight=0.54321",
        ]);
        let random = run(&[
            "-sS",
            &format!("{host}/random?label=cat"),
            "-o",
            &pet_arg,
            "-w",
            "%{http_code} %{content_type}",
        ]);
        (upload, random)
    })
    .await
    .unwrap();
    assert!(upload.status.success(), "{}", String::from_utf8_lossy(&upload.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&upload.stdout).unwrap();
    assert_eq!(answer["weight"], 0.54321, "{answer}");
    assert_eq!(String::from_utf8_lossy(&random.stdout), "200 image/jpeg");
    assert_eq!(std::fs::read(&pet).unwrap(), fixture("images/cat_kde_tabby_q85.jpg"));
}

on_both_backends!(petapi_readme_curl_commands_work_unchanged_with_the_host_swapped);
