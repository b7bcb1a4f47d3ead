//! The presigned upload flow: `requestUpload` → PUT the file to `uploadUrl` → `completeUpload`.
//! On S3 the PUT goes to moto through a presigned URL; locally to `PUT /uploads/{ticket}`.

use resolvers::domain::validation::UploadLimits;
use resolvers::CatalogSettings;
use serde_json::{json, Value};

use crate::helpers::{error_codes, fixture, spawn_app, spawn_app_with, TestApp, IMAGE_FIELDS};

async fn request_upload(app: &TestApp, label: &str) -> Value {
    app.data(
        "mutation($label: String!) { requestUpload(label: $label) { ticket uploadUrl expiresAt maxBytes } }",
        json!({ "label": label }),
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

on_both_backends! {
    async fn a_presigned_upload_is_validated_and_filed_like_a_direct_one(backend) {
        let app = spawn_app(backend).await;
        let grant = request_upload(&app, "cat").await;
        assert_eq!(grant["maxBytes"], UploadLimits::default().max_bytes);
        let url = grant["uploadUrl"].as_str().unwrap();
        let image = fixture("images/cat_chelsea.png");
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

    async fn refused_presigned_files_leave_nothing_behind(backend) {
        let settings = CatalogSettings {
            limits: UploadLimits { max_bytes: 220_000, ..UploadLimits::default() },
            ..CatalogSettings::default()
        };
        let app = spawn_app_with(backend, settings).await;
        let before = app.residue().await;
        let cases: [(&str, Vec<u8>, &str); 4] = [
            ("truncated", fixture("bad-inputs/truncated.jpg"), "INVALID_IMAGE"),
            ("a GIF", fixture("bad-inputs/cat.gif"), "UNSUPPORTED_MEDIA_TYPE"),
            ("not an image", b"%PDF-1.4 hello".to_vec(), "INVALID_IMAGE"),
            ("over maxBytes", fixture("images/cat_chelsea.png"), "PAYLOAD_TOO_LARGE"),
        ];
        for (what, bytes, code) in cases {
            let grant = request_upload(&app, "dog").await;
            let status = put(&app, grant["uploadUrl"].as_str().unwrap(), bytes).await;
            if status == 200 {
                let (_, body) = complete(&app, grant["ticket"].as_str().unwrap(), 0.5).await;
                assert_eq!(error_codes(&body), [code], "{what}: {body}");
            } else {
                // The local stand-in refuses an oversized PUT itself; S3 takes any size.
                assert_eq!((backend, status), (crate::helpers::Backend::Embedded, 413), "{what}");
            }
            assert_eq!(app.residue().await, before, "{what} left something behind");
        }
    }

    async fn tickets_are_checked_before_anything_is_read(backend) {
        let app = spawn_app(backend).await;
        let (_, body) = request_upload_raw(&app, "bird").await;
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"]);
        for forged in ["cat./../../x", "cat.00000000000000000000000000000000x", "nonsense"] {
            let (_, body) = complete(&app, forged, 0.5).await;
            assert_eq!(error_codes(&body), ["BAD_USER_INPUT"], "{forged}");
        }
        let (_, body) = complete(&app, "cat.0123456789abcdef0123456789abcdef", 0.5).await;
        assert_eq!(error_codes(&body), ["NOT_FOUND"], "a well-formed ticket nobody PUT to");

        // A bad weight is refused before the staged file is touched, so it can be retried.
        let grant = request_upload(&app, "cat").await;
        put(&app, grant["uploadUrl"].as_str().unwrap(), fixture("images/cat_chelsea.png")).await;
        let (_, body) = complete(&app, grant["ticket"].as_str().unwrap(), -1.0).await;
        assert_eq!(error_codes(&body), ["BAD_USER_INPUT"]);
        assert_eq!(app.staged_files().await, 1);
        let (status, body) = complete(&app, grant["ticket"].as_str().unwrap(), 1.0).await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn request_upload_raw(app: &TestApp, label: &str) -> (u16, Value) {
    app.graphql(
        "mutation($label: String!) { requestUpload(label: $label) { ticket } }",
        json!({ "label": label }),
    )
    .await
}
