//! The presigned upload flow: `requestUpload` → PUT the file to `uploadUrl` → `completeUpload`.
//! On S3 the PUT goes to moto through a presigned URL; locally to `PUT /uploads/{ticket}`.

use resolvers::domain::validation::UploadLimits;
use resolvers::CatalogSettings;
use serde_json::{json, Value};

use crate::helpers::{error_codes, fixture, spawn_app, Backend, TestApp, IMAGE_FIELDS};

async fn request_upload(app: &TestApp, label: &str, byte_size: usize) -> Value {
    app.data(
        "mutation($label: String!, $size: Int!) { requestUpload(label: $label, byteSize: $size) { ticket uploadUrl expiresAt maxBytes } }",
        json!({ "label": label, "size": byte_size }),
    )
    .await["requestUpload"]
        .clone()
}

async fn put(app: &TestApp, url: &str, bytes: Vec<u8>) -> u16 {
    app.client.put(url).body(bytes).send().await.unwrap().status().as_u16()
}

async fn complete(app: &TestApp, ticket: &str, weight: f64) -> (u16, Value) {
    app.graphql(
        &format!("mutation($t: ID!, $w: Float) {{ completeUpload(ticket: $t, weight: $w) {{ {IMAGE_FIELDS} }} }}"),
        json!({ "t": ticket, "w": weight }),
    )
    .await
}

async fn a_presigned_upload_is_validated_and_filed_like_a_direct_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let image = fixture("images/cat_chelsea.png");
    let grant = request_upload(&app, "cat", image.len()).await;
    assert_eq!(grant["maxBytes"], UploadLimits::default().max_bytes);
    let url = grant["uploadUrl"].as_str().unwrap();
    assert_eq!(put(&app, url, image.clone()).await, 200);
    assert_eq!(app.staged_files().await, 1);

    let (status, body) = complete(&app, grant["ticket"].as_str().unwrap(), 0.75).await;
    assert_eq!(status, 200, "{body}");
    let filed = &body["data"]["completeUpload"];
    assert_eq!(filed["contentType"], "image/png");
    assert_eq!(filed["weight"], 0.75);
    assert_eq!(filed["byteSize"], image.len());
    assert_eq!(app.staged_files().await, 0, "the staged file is gone once filed");
    app.assert_chunk_invariant().await;
    let fetched = app.client.get(filed["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), image.as_slice());

    // The ticket is spent.
    let (_, body) = complete(&app, grant["ticket"].as_str().unwrap(), 0.75).await;
    assert_eq!(error_codes(&body), ["NOT_FOUND"]);
}

async fn refused_presigned_files_leave_nothing_behind(backend: Backend) {
    let settings = CatalogSettings {
        limits: UploadLimits {
            max_bytes: 220_000,
            ..UploadLimits::default()
        },
        ..CatalogSettings::default()
    };
    let app = TestApp::builder(backend).settings(settings).start().await;
    let before = app.residue().await;
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("truncated", fixture("bad-inputs/truncated.jpg"), "INVALID_IMAGE"),
        ("a GIF", fixture("bad-inputs/cat.gif"), "UNSUPPORTED_MEDIA_TYPE"),
        ("not an image", b"%PDF-1.4 hello".to_vec(), "INVALID_IMAGE"),
    ];
    for (what, bytes, code) in cases {
        let grant = request_upload(&app, "dog", bytes.len()).await;
        assert_eq!(
            put(&app, grant["uploadUrl"].as_str().unwrap(), bytes).await,
            200,
            "{what}"
        );
        let (_, body) = complete(&app, grant["ticket"].as_str().unwrap(), 0.5).await;
        assert_eq!(error_codes(&body), [code], "{what}: {body}");
        assert_eq!(app.residue().await, before, "{what} left something behind");
    }
    // Over maxBytes: refused when asked, before any URL exists; a size that is no size too.
    for (size, code) in [
        (220_001, "PAYLOAD_TOO_LARGE"),
        (0, "BAD_USER_INPUT"),
        (-5, "BAD_USER_INPUT"),
    ] {
        let (_, body) = request_upload_raw(&app, "dog", size).await;
        assert_eq!(error_codes(&body), [code], "byteSize {size}: {body}");
    }
    // The local stand-in also refuses an oversized PUT itself, whatever was declared (on S3
    // the URL's signature covers the declared length: see the next test).
    if backend == crate::helpers::Backend::Embedded {
        let grant = request_upload(&app, "dog", 1000).await;
        assert_eq!(
            put(
                &app,
                grant["uploadUrl"].as_str().unwrap(),
                fixture("images/cat_chelsea.png")
            )
            .await,
            413
        );
    }
    assert_eq!(app.residue().await, before, "nothing left behind");
}

async fn tickets_are_checked_before_anything_is_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, body) = request_upload_raw(&app, "bird", 10).await;
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"]);
    for forged in ["cat./../../x", "cat.00000000000000000000000000000000x", "nonsense"] {
        let (_, body) = complete(&app, forged, 0.5).await;
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{forged}");
    }
    let (_, body) = complete(&app, "cat.0123456789abcdef0123456789abcdef", 0.5).await;
    assert_eq!(error_codes(&body), ["NOT_FOUND"], "a well-formed ticket nobody PUT to");

    // A bad weight is refused before the staged file is touched, so it can be retried.
    let photo = fixture("images/cat_chelsea.png");
    let grant = request_upload(&app, "cat", photo.len()).await;
    put(&app, grant["uploadUrl"].as_str().unwrap(), photo).await;
    let (_, body) = complete(&app, grant["ticket"].as_str().unwrap(), -1.0).await;
    assert_eq!(error_codes(&body), ["BAD_USER_INPUT"]);
    assert_eq!(app.staged_files().await, 1);
    let (status, body) = complete(&app, grant["ticket"].as_str().unwrap(), 1.0).await;
    assert_eq!(status, 200, "{body}");
}

on_both_backends!(
    a_presigned_upload_is_validated_and_filed_like_a_direct_one,
    refused_presigned_files_leave_nothing_behind,
    tickets_are_checked_before_anything_is_read
);

async fn request_upload_raw(app: &TestApp, label: &str, byte_size: i64) -> (u16, Value) {
    app.graphql(
        "mutation($label: String!, $size: Int!) { requestUpload(label: $label, byteSize: $size) { ticket } }",
        json!({ "label": label, "size": byte_size }),
    )
    .await
}

/// moto takes a presigned PUT of any length (it checks no signature); S3 checks the signature,
/// and the signature covers `content-length`: a body of any other size than declared is refused.
#[tokio::test]
async fn on_s3_the_upload_url_is_signed_for_the_declared_length() {
    let app = spawn_app(crate::helpers::Backend::Aws).await;
    let grant = request_upload(&app, "cat", 12_345).await;
    let url = reqwest::Url::parse(grant["uploadUrl"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let signed: Vec<&str> = query["X-Amz-SignedHeaders"].split(';').collect();
    assert!(signed.contains(&"content-length"), "{signed:?}");
    assert!(query.contains_key("X-Amz-Signature"));
    assert!(query["X-Amz-Expires"].parse::<u64>().unwrap() <= 15 * 60);

    // What S3 recomputes: the same PUT signed at the same instant with the declared length
    // gives the same signature, with any other length another one, which S3 refuses.
    let crate::helpers::Storage::Aws { clients, resources } = &app.storage else {
        unreachable!()
    };
    let at = std::time::SystemTime::now();
    let signature = |length: i64| {
        let (s3, bucket) = (clients.s3.clone(), resources.bucket.clone());
        async move {
            let config = aws_sdk_s3::presigning::PresigningConfig::builder()
                .start_time(at)
                .expires_in(std::time::Duration::from_secs(900))
                .build()
                .unwrap();
            let presigned = s3
                .put_object()
                .bucket(bucket)
                .key("staging/cat/x")
                .content_length(length)
                .presigned(config)
                .await
                .unwrap();
            let url = reqwest::Url::parse(presigned.uri()).unwrap();
            url.query_pairs()
                .find(|(k, _)| k == "X-Amz-Signature")
                .unwrap()
                .1
                .into_owned()
        }
    };
    assert_eq!(signature(12_345).await, signature(12_345).await);
    assert_ne!(
        signature(12_345).await,
        signature(12_346).await,
        "the length is part of what is signed"
    );
}
