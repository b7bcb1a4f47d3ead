//! Pictures for phones: sized variants (`THUMB`, `SMALL`, `MEDIUM`), the BlurHash placeholder,
//! `url(size:)`, and the REST routes' `?size=`, on both backends. Every fixture photo and every
//! hostile-but-valid file is checked: each variant decodes, has the dimensions its row says,
//! fits its size, keeps the aspect ratio and is smaller than the original.

use serde_json::{json, Value};

use crate::support::helpers::{error_codes, fixture, manifest, spawn_app, Backend, TestApp};

const FIELDS: &str =
    "id width height byteSize contentType url small: url(size: SMALL) medium: url(size: MEDIUM) placeholder variants { size width height contentType byteSize url }";

async fn image(app: &TestApp, id: &str) -> Value {
    let q = format!("query($id: ID!) {{ image(id: $id) {{ {FIELDS} }} }}");
    app.data(&q, json!({ "id": id })).await["image"].clone()
}

/// GETs a URL the API handed out: (content type, bytes).
async fn fetch(app: &TestApp, url: &str) -> (String, Vec<u8>) {
    let response = app.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, response.bytes().await.unwrap().to_vec())
}

/// What a URL names, without the parts a presigned URL changes every second (`X-Amz-Date`, the
/// signature): two URLs handed out a second apart for the same object name the same thing.
fn object_of(url: &Value) -> String {
    let mut url = reqwest::Url::parse(url.as_str().unwrap()).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(name, _)| !name.starts_with("X-Amz-"))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    url.to_string()
}

/// Every variant of `image` as served: decodes, matches its facts, fits, keeps the ratio.
async fn assert_sane_variants(app: &TestApp, image: &Value, what: &str) {
    let (width, height) = (image["width"].as_f64().unwrap(), image["height"].as_f64().unwrap());
    let variants = image["variants"].as_array().unwrap();
    let sizes: Vec<&str> = variants.iter().map(|v| v["size"].as_str().unwrap()).collect();
    assert_eq!(sizes, ["THUMB", "SMALL", "MEDIUM", "ORIGINAL"], "{what}");
    assert_eq!(
        object_of(&variants[3]["url"]),
        object_of(&image["url"]),
        "{what}: ORIGINAL is the original"
    );
    for variant in &variants[..3] {
        let bound = match variant["size"].as_str().unwrap() {
            "THUMB" => 256.0,
            "SMALL" => 640.0,
            _ => 1280.0,
        };
        let (vw, vh) = (variant["width"].as_f64().unwrap(), variant["height"].as_f64().unwrap());
        if object_of(&variant["url"]) == object_of(&image["url"]) {
            // Not stored: the original fits this size (or would not shrink in bytes).
            assert_eq!(
                (vw, vh),
                (width, height),
                "{what}: a size served by the original says so"
            );
            continue;
        }
        assert!(
            vw.max(vh) <= bound && vw.max(vh) < width.max(height),
            "{what}: {variant}"
        );
        assert!(
            (vw / vh - width / height).abs() <= 2.0 / vw.min(vh),
            "{what}: aspect ratio kept: {variant}"
        );
        let (content_type, bytes) = fetch(app, variant["url"].as_str().unwrap()).await;
        assert_eq!(content_type, variant["contentType"], "{what}");
        assert_eq!(bytes.len() as u64, variant["byteSize"].as_u64().unwrap(), "{what}");
        assert!(
            bytes.len() < image["byteSize"].as_u64().unwrap() as usize,
            "{what}: smaller than the original"
        );
        let decoded = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!((decoded.width() as f64, decoded.height() as f64), (vw, vh), "{what}");
    }
    let placeholder = image["placeholder"].as_str().unwrap();
    assert!(
        (20..40).contains(&placeholder.len()) && placeholder.is_ascii(),
        "{what}: {placeholder}"
    );
}

async fn every_photo_and_hostile_file_gets_sane_variants_and_a_placeholder(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut files: Vec<String> = manifest("images/MANIFEST.tsv")
        .iter()
        .map(|row| format!("images/{}", row["file"]))
        .collect();
    files.extend(
        crate::hostile::ACCEPTED
            .iter()
            .map(|(file, ..)| format!("bad-inputs/{file}")),
    );
    for file in &files {
        let (status, body) = app
            .upload_raw("cat", Some(0.5), "f", "application/octet-stream", fixture(file))
            .await;
        assert_eq!(status, 200, "{file}: {body}");
        let shown = image(&app, body["data"]["upload"]["id"].as_str().unwrap()).await;
        assert_sane_variants(&app, &shown, file).await;
    }
    app.assert_chunk_invariant().await;
}

on_both_backends!(every_photo_and_hostile_file_gets_sane_variants_and_a_placeholder);

async fn a_phone_gets_the_size_it_asks_for_and_nothing_outlives_the_image(backend: Backend) {
    let app = spawn_app(backend).await;
    // 1024×768: a thumbnail and a small variant; MEDIUM (1280) is the original itself.
    let uploaded = app.upload("dog", "images/dog_farm_german_shepherd.webp", 0.5).await;
    let id = uploaded["id"].as_str().unwrap();
    let shown = image(&app, id).await;
    assert_ne!(
        object_of(&shown["small"]),
        object_of(&shown["url"]),
        "SMALL is a variant"
    );
    assert_eq!(
        object_of(&shown["medium"]),
        object_of(&shown["url"]),
        "MEDIUM is served by the original"
    );
    let (content_type, bytes) = fetch(&app, shown["small"].as_str().unwrap()).await;
    assert_eq!(content_type, "image/jpeg");
    let small = image::load_from_memory(&bytes).unwrap();
    assert_eq!((small.width(), small.height()), (640, 480));
    assert_eq!(app.stored_variants().await, 2);
    if backend == Backend::Embedded {
        // The same URL for the same bytes and size, and it says so: phones keep it.
        assert_eq!(image(&app, id).await["small"], shown["small"]);
        for url in [&shown["small"], &shown["url"]] {
            let response = app.client.get(url.as_str().unwrap()).send().await.unwrap();
            assert_eq!(
                response.headers()["cache-control"],
                "public, max-age=31536000, immutable",
                "{url}"
            );
        }
    }

    // petAPI's /random takes a size; a size it does not know is the client's error.
    let random = |size: &str| {
        app.client
            .get(format!("{}/random?label=dog&size={size}", app.address))
            .send()
    };
    let response = random("thumb").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let thumb = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (256, 192));
    let response = random("medium").await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "image/webp",
        "the original serves MEDIUM"
    );
    let refused = random("huge").await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{body}");

    // Deleting the image deletes its variants.
    assert!(app.delete_image(id).await);
    assert_eq!(app.stored_variants().await, 0);
    app.assert_chunk_invariant().await;
}

on_both_backends!(a_phone_gets_the_size_it_asks_for_and_nothing_outlives_the_image);

/// Makes `app`'s images look as images stored before variants do: no variants or placeholder
/// on the rows, no variant files.
async fn forget_renditions(app: &TestApp) {
    for label in app.catalog.settings().labels.iter() {
        for row in app.tables.all_images(label).await.unwrap() {
            app.tables.set_renditions(&row.id, Vec::new(), None).await.unwrap();
        }
    }
    match &app.storage {
        crate::support::helpers::Storage::Embedded { data_dir } => {
            std::fs::remove_dir_all(data_dir.join("images/variants")).unwrap();
        }
        crate::support::helpers::Storage::Aws { clients, resources } => {
            let listed = clients
                .s3
                .list_objects_v2()
                .bucket(&resources.bucket)
                .prefix("variants/")
                .send()
                .await
                .unwrap();
            for object in listed.contents() {
                clients
                    .s3
                    .delete_object()
                    .bucket(&resources.bucket)
                    .key(object.key().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    assert_eq!(app.stored_variants().await, 0);
}

async fn images_stored_before_variants_get_them_from_the_backfill_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for file in [
        "images/cat_chelsea.png",
        "images/dog_kde_golden.png",
        "images/dog_farm_german_shepherd.webp",
    ] {
        ids.push(app.upload("cat", file, 0.5).await["id"].as_str().unwrap().to_owned());
    }
    forget_renditions(&app).await;
    let old = image(&app, &ids[2]).await;
    assert_eq!(
        object_of(&old["small"]),
        object_of(&old["url"]),
        "no variant yet: the original serves every size"
    );
    assert_eq!(old["placeholder"], Value::Null);

    let cat = app.catalog.settings().labels.parse("cat").unwrap();
    let report = app.catalog.backfill_renditions(&cat).await.unwrap();
    assert_eq!((report.made, report.already_done, report.failed.len()), (3, 0, 0));
    for id in &ids {
        assert_sane_variants(&app, &image(&app, id).await, id).await;
    }
    assert_ne!(object_of(&image(&app, &ids[2]).await["small"]), object_of(&old["url"]));
    app.assert_chunk_invariant().await;
    let again = app.catalog.backfill_renditions(&cat).await.unwrap();
    assert_eq!((again.made, again.already_done), (0, 3), "idempotent");
}

on_both_backends!(images_stored_before_variants_get_them_from_the_backfill_once);

/// `pawql variants` itself, on a data directory (the server stopped: redb has one user).
#[tokio::test]
async fn the_variants_command_backfills_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::builder(Backend::Embedded)
        .data_dir(dir.path())
        .settings(Default::default())
        .start()
        .await;
    let id = app.upload("dog", "images/dog_kde_golden.png", 0.5).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    forget_renditions(&app).await;
    app.stop().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pawql"))
        .args(["variants", "--data-dir"])
        .arg(dir.path())
        .env_remove("PAWQL_BACKEND")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("dog: variants made for 1, 0 already had them, 0 failed"),
        "{said}"
    );
    let app = TestApp::builder(Backend::Embedded)
        .data_dir(dir.path())
        .settings(Default::default())
        .start()
        .await;
    assert_sane_variants(&app, &image(&app, &id).await, &id).await;
    app.assert_chunk_invariant().await;
}

/// With the stage's CDN (`PAWQL_CDN_URL`, serverless.yml's CloudFront distribution), image
/// URLs are on it: the same for the same bytes and size, so phones and the CDN cache them,
/// and the objects say they never change.
#[tokio::test]
async fn on_aws_with_a_cdn_image_urls_are_stable_cdn_urls() {
    let clients = crate::support::moto::MotoServer::shared().await.clients().await;
    let stage = crate::support::moto::unique_stage();
    pawql::adapters::aws::provision(&clients, &stage).await.unwrap();
    let mut resources = pawql::adapters::aws::Resources::for_stage(&stage);
    resources.cdn_url = Some("https://d111111abcdef8.cloudfront.net/".into());
    let settings = resolvers::CatalogSettings::default();
    let backend = pawql::adapters::aws::open_resources(
        &crate::iam::enforcing(&clients, &[crate::iam::Function::Api], &stage),
        resources.clone(),
        &settings,
    );
    let catalog = resolvers::Catalog::new(backend.images.clone(), backend.images, backend.tables, settings);
    let record = catalog
        .upload("dog", Some(0.5), fixture("images/dog_farm_german_shepherd.webp").into())
        .await
        .unwrap();
    use resolvers::domain::variants::ImageSize;
    let original = catalog.image_url(&record, ImageSize::Original).await.unwrap();
    let small = catalog.image_url(&record, ImageSize::Small).await.unwrap();
    assert_eq!(
        original,
        format!("https://d111111abcdef8.cloudfront.net/{}", record.id.storage_key())
    );
    assert_eq!(
        small,
        format!(
            "https://d111111abcdef8.cloudfront.net/{}",
            record.id.variant_key(ImageSize::Small)
        )
    );
    assert_eq!(
        catalog.image_url(&record, ImageSize::Small).await.unwrap(),
        small,
        "stable"
    );
    assert_eq!(
        catalog.image_url(&record, ImageSize::Medium).await.unwrap(),
        original,
        "not stored: the original"
    );
    for key in [record.id.storage_key(), record.id.variant_key(ImageSize::Small)] {
        let head = clients
            .s3
            .head_object()
            .bucket(&resources.bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.cache_control(),
            Some("public, max-age=31536000, immutable"),
            "{key}"
        );
    }
}
