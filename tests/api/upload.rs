//! Uploading, looking up, re-weighting and deleting images over HTTP.

use base64::Engine;
use serde_json::json;

use crate::support::helpers::{error_codes, fixture, manifest, spawn_app, without_url, Backend, IMAGE_FIELDS};

async fn every_fixture_photo_uploads_with_the_dimensions_and_hash_of_its_bytes(backend: Backend) {
    let app = spawn_app(backend).await;
    for row in manifest("images/MANIFEST.tsv") {
        let file = &row["file"];
        let label = if row["expected"] == "dog" { "dog" } else { "cat" };
        let image = app.upload(label, &format!("images/{file}"), 0.5).await;
        let (w, h) = row["dimensions"].split_once('x').unwrap();
        assert_eq!(image["width"].as_u64().unwrap().to_string(), w, "{file}");
        assert_eq!(image["height"].as_u64().unwrap().to_string(), h, "{file}");
        assert_eq!(image["sha256"], row["sha256"], "{file}");
        assert_eq!(image["byteSize"].as_u64().unwrap().to_string(), row["bytes"], "{file}");
        assert_eq!(image["id"], format!("{label}-{}", row["sha256"]));
        let expected_type = match row["format"].as_str() {
            "JPEG" => "image/jpeg",
            "PNG" => "image/png",
            "WEBP" => "image/webp",
            other => panic!("unexpected format {other}"),
        };
        assert_eq!(image["contentType"], expected_type, "{file}");
    }
    app.assert_chunk_invariant().await;
}

on_both_backends!(every_fixture_photo_uploads_with_the_dimensions_and_hash_of_its_bytes);

async fn uploading_the_same_bytes_twice_is_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.upload("cat", "images/cat_chelsea.png", 0.3).await;
    let second = app.upload("cat", "images/cat_chelsea.png", 0.9).await;
    assert_eq!(
        without_url(&first),
        without_url(&second),
        "the existing image comes back unchanged"
    );
    assert_eq!(
        app.labels().await[0],
        json!({ "label": "cat", "imageCount": 1, "totalWeight": 0.3 })
    );
    // The same bytes under another label are another image.
    let as_dog = app.upload("dog", "images/cat_chelsea.png", 0.5).await;
    assert_ne!(as_dog["id"], first["id"]);
    assert_eq!(app.stored_files().await, 2);
    app.assert_chunk_invariant().await;
}

on_both_backends!(uploading_the_same_bytes_twice_is_idempotent);

async fn url_serves_the_bytes_with_the_type_they_have(backend: Backend) {
    let app = spawn_app(backend).await;
    // A PNG sent as image/jpeg named .jpg is stored and served as PNG.
    let bytes = fixture("bad-inputs/png_named.jpg");
    let (_, body) = app
        .upload_raw("cat", None, "png_named.jpg", "image/jpeg", bytes.clone())
        .await;
    let image = &body["data"]["upload"];
    assert_eq!(image["contentType"], "image/png");
    let response = app.client.get(image["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

on_both_backends!(url_serves_the_bytes_with_the_type_they_have);

async fn base64_is_the_bytes_and_is_read_only_when_selected(backend: Backend) {
    let app = spawn_app(backend).await;
    let bytes = fixture("images/cat_kde_tabby_q85.jpg");
    app.upload("cat", "images/cat_kde_tabby_q85.jpg", 0.5).await;

    let gets_before = app.image_reads();
    let image = app.random_image("cat", "id url").await;
    // `/images/cat-<sha>` locally, a presigned `.../<sha>/cat?X-Amz-...` on S3.
    let sha = image["id"].as_str().unwrap().rsplit('-').next().unwrap();
    assert!(image["url"].as_str().unwrap().contains(sha), "{image}");
    assert_eq!(app.image_reads(), gets_before, "url must not read storage");

    let image = app.random_image("cat", "base64").await;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(image["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, bytes);
    assert_eq!(app.image_reads(), gets_before + 1);
}

on_both_backends!(base64_is_the_bytes_and_is_read_only_when_selected);

async fn image_by_id_and_the_errors_around_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let uploaded = app.upload("dog", "images/dog_kde_golden.png", 0.25).await;
    let q = format!("query($id: ID!) {{ image(id: $id) {{ {IMAGE_FIELDS} }} }}");
    let found = app.data(&q, json!({ "id": uploaded["id"] })).await;
    assert_eq!(without_url(&found["image"]), without_url(&uploaded));

    let missing = format!("dog-{}", "0".repeat(64));
    assert_eq!(app.data(&q, json!({ "id": missing })).await["image"], json!(null));

    for bad in ["dog", "dog-xyz", "../../etc/passwd", "bird-0000", "🐶-00"] {
        let (_, body) = app.graphql(&q, json!({ "id": bad })).await;
        assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{bad}: {body}");
    }
}

on_both_backends!(image_by_id_and_the_errors_around_it);

async fn set_weight_moves_the_label_total_and_unknown_ids_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    app.upload("cat", "images/cat_kde_tabby.png", 0.25).await;
    let (_, body) = app.set_weight(a["id"].as_str().unwrap(), 0.125).await;
    assert_eq!(body["data"]["setWeight"]["weight"], 0.125);
    assert_eq!(app.labels().await[0]["totalWeight"], 0.375);
    app.assert_chunk_invariant().await;

    let (_, body) = app.set_weight(&format!("cat-{}", "a".repeat(64)), 0.5).await;
    assert_eq!(error_codes(&body), vec!["NOT_FOUND"]);
    for bad in [0.0, -1.0, 1.5, 1e308] {
        let (_, body) = app.set_weight(a["id"].as_str().unwrap(), bad).await;
        assert_eq!(error_codes(&body), vec!["BAD_USER_INPUT"], "{bad}");
    }
    assert_eq!(
        app.labels().await[0]["totalWeight"],
        0.375,
        "refused weights change nothing"
    );
}

on_both_backends!(set_weight_moves_the_label_total_and_unknown_ids_are_not_found);

async fn delete_removes_row_bookkeeping_and_bytes_and_is_safe_to_retry(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.upload("cat", "images/cat_chelsea.png", 0.5).await;
    let b = app.upload("cat", "images/cat_kde_tabby.png", 0.25).await;
    assert_eq!(app.delete_image(a["id"].as_str().unwrap()).await, json!(true));
    assert_eq!(app.delete_image(a["id"].as_str().unwrap()).await, json!(false));
    assert_eq!(
        app.labels().await[0],
        json!({ "label": "cat", "imageCount": 1, "totalWeight": 0.25 })
    );
    assert_eq!(app.stored_files().await, 1);
    let response = app.client.get(a["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.random_image("cat", "id").await["id"],
        b["id"],
        "only the survivor is drawn"
    );
    app.assert_chunk_invariant().await;
}

on_both_backends!(delete_removes_row_bookkeeping_and_bytes_and_is_safe_to_retry);

async fn healthz_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap(),
        json!({ "status": "ok" })
    );
}

on_both_backends!(healthz_answers);
