//! The presigned upload flow: `requestUpload` → PUT the file to `uploadUrl` → `completeUpload`.
//! On S3 the PUT goes to moto through a presigned URL; locally to `PUT /uploads/{ticket}`.

use resolvers::domain::validation::UploadLimits;
use resolvers::CatalogSettings;
use serde_json::{json, Value};

use crate::support::helpers::{error_codes, fixture, spawn_app, Backend, TestApp, IMAGE_FIELDS};

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
    // The local stand-in refuses a PUT longer than its URL declares (on S3 the URL's
    // signature covers the declared length: see `on_s3_the_upload_url_is_signed_…`).
    if backend == crate::support::helpers::Backend::Embedded {
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

/// The local `PUT /uploads/{ticket}` holds the line S3 holds for a presigned URL: only a URL
/// this server signed, before it expires, for exactly the declared bytes; and a staged file
/// nobody completes does not outlive its ticket. Every refused PUT leaves nothing on disk.
#[tokio::test]
async fn locally_only_a_signed_unexpired_put_of_the_declared_size_is_staged() {
    use resolvers::domain::ticket::{UploadSigner, UploadTicket};
    let app = spawn_app(Backend::Embedded).await;
    let crate::support::helpers::Storage::Embedded { data_dir } = &app.storage else {
        unreachable!()
    };
    let photo = fixture("images/cat_chelsea.png");
    let grant = request_upload(&app, "cat", photo.len()).await;
    let signed_url = grant["uploadUrl"].as_str().unwrap().to_owned();
    let (bare_url, query) = signed_url
        .split_once('?')
        .expect("the upload URL carries its signature");
    let ticket = grant["ticket"].as_str().unwrap();
    let labels = resolvers::domain::label::LabelSet::default_pets();
    let put_status = |url: String, body: Vec<u8>| {
        let client = app.client.clone();
        async move { client.put(url).body(body).send().await.unwrap().status().as_u16() }
    };

    // The server's own key, read from its data directory: a URL it really issued, expired.
    let key = std::fs::read(data_dir.join("upload-signing.key")).unwrap();
    let signer = UploadSigner::from_key(&key).unwrap();
    let parsed = UploadTicket::parse(ticket, &labels).unwrap();
    let expired = signer.sign(
        &parsed,
        photo.len() as u64,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    );
    let another_server = UploadSigner::generate().unwrap();
    let foreign = another_server.sign(
        &parsed,
        photo.len() as u64,
        chrono::Utc::now() + chrono::Duration::minutes(5),
    );
    let unissued = format!("{}/uploads/cat.0123456789abcdef0123456789abcdef", app.address);
    let refused: [(&str, String, Vec<u8>, u16); 7] = [
        ("an unissued ticket, unsigned", unissued.clone(), photo.clone(), 403),
        (
            "an unissued ticket, this URL's signature",
            format!("{unissued}?{query}"),
            photo.clone(),
            403,
        ),
        ("the bare ticket URL", bare_url.to_owned(), photo.clone(), 403),
        (
            "a larger declared size",
            format!(
                "{bare_url}?{}",
                query.replace(&format!("size={}", photo.len()), "size=9999999")
            ),
            photo.clone(),
            403,
        ),
        ("expired", format!("{bare_url}?{}", expired.query()), photo.clone(), 403),
        (
            "another server's key",
            format!("{bare_url}?{}", foreign.query()),
            photo.clone(),
            403,
        ),
        (
            "more bytes than declared",
            signed_url.clone(),
            [photo.clone(), vec![0; 10]].concat(),
            413,
        ),
    ];
    for (what, url, body, status) in refused {
        assert_eq!(put_status(url, body).await, status, "{what}");
        assert_eq!(app.staged_files().await, 0, "{what} staged something");
    }
    assert_eq!(
        put_status(signed_url.clone(), photo[..100].to_vec()).await,
        400,
        "fewer bytes than declared"
    );
    assert_eq!(app.staged_files().await, 0);
    let (_, body) = complete(&app, ticket, 0.5).await;
    assert_eq!(error_codes(&body), ["NOT_FOUND"], "nothing was staged for the ticket");

    // The URL it issued works, and a file nobody completes in the ticket's lifetime is gone.
    assert_eq!(put_status(signed_url, photo).await, 200);
    assert_eq!(app.staged_files().await, 1);
    let staged = std::fs::read_dir(data_dir.join("staging/cat"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let written_long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(16 * 60);
    std::fs::File::options()
        .write(true)
        .open(&staged)
        .unwrap()
        .set_modified(written_long_ago)
        .unwrap();
    let (_, body) = complete(&app, ticket, 0.5).await;
    assert_eq!(
        error_codes(&body),
        ["NOT_FOUND"],
        "a staged file older than its ticket is not filed"
    );
    assert_eq!(app.staged_files().await, 0, "and it is removed");
}

/// A staged file left by a server that stopped is swept when the store next opens.
#[tokio::test]
async fn staged_files_older_than_a_ticket_are_swept_when_the_local_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let photo = fixture("images/cat_chelsea.png");
    let (ticket, fresh_ticket) = {
        let app = TestApp::builder(Backend::Embedded).data_dir(dir.path()).start().await;
        let mut tickets = Vec::new();
        for _ in 0..2 {
            let grant = request_upload(&app, "cat", photo.len()).await;
            assert_eq!(
                put(&app, grant["uploadUrl"].as_str().unwrap(), photo.clone()).await,
                200
            );
            tickets.push(grant["ticket"].as_str().unwrap().to_owned());
        }
        assert_eq!(app.staged_files().await, 2);
        app.stop().await;
        (tickets[0].clone(), tickets[1].clone())
    };
    let token = ticket.split_once('.').unwrap().1;
    let old = dir.path().join("staging/cat").join(token);
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(16 * 60);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();

    let app = TestApp::builder(Backend::Embedded).data_dir(dir.path()).start().await;
    assert_eq!(app.staged_files().await, 1, "the old file is swept, the fresh one kept");
    assert!(!old.exists());
    let (status, body) = complete(&app, &fresh_ticket, 0.5).await;
    assert_eq!(status, 200, "a URL issued before the restart still counts: {body}");
}

async fn request_upload_raw(app: &TestApp, label: &str, byte_size: i64) -> (u16, Value) {
    app.graphql(
        "mutation($label: String!, $size: Int!) { requestUpload(label: $label, byteSize: $size) { ticket } }",
        json!({ "label": label, "size": byte_size }),
    )
    .await
}

/// moto takes a presigned PUT of any length (it checks no signature); S3 recomputes the
/// signature from the request it gets, and the URL signs `content-length`. So the test does
/// what S3 does, with its own SigV4 (not the SDK's signer): from the URL pawql handed out and
/// the stage's credentials, the signature comes out right for a body of the declared
/// `byteSize`, and wrong for any other length, which S3 would refuse.
#[tokio::test]
async fn on_s3_the_upload_url_is_signed_for_the_declared_length() {
    let app = spawn_app(crate::support::helpers::Backend::Aws).await;
    let grant = request_upload(&app, "cat", 12_345).await;
    let url = reqwest::Url::parse(grant["uploadUrl"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
    assert_eq!(
        query["X-Amz-SignedHeaders"], "content-length;host",
        "exactly these, so S3 checks the length"
    );
    assert!(query["X-Amz-Expires"].parse::<u64>().unwrap() <= 15 * 60);

    // Signed with the API role's credentials, as on AWS (the harness names the role and stage
    // in the key id: tests/api/iam.rs).
    let (_, secret) = crate::support::moto::CREDENTIALS;
    let signature = |length: u64| sigv4_query_signature(&url, secret, length);
    let key_id = query["X-Amz-Credential"].split('/').next().unwrap();
    assert!(
        key_id.starts_with("role:api") && key_id.ends_with(&format!(":{}", app.stage())),
        "signed as the API's role on the app's stage: {key_id}"
    );
    assert_eq!(
        signature(12_345),
        query["X-Amz-Signature"],
        "what S3 computes for the declared length"
    );
    for other in [0, 12_344, 12_346, 10 * 1024 * 1024] {
        assert_ne!(
            signature(other),
            query["X-Amz-Signature"],
            "a body of {other} bytes is refused"
        );
    }
}

/// SigV4 for a presigned `PUT` (the AWS documentation's "Authenticating Requests: Using Query
/// Parameters"): the canonical request with the URL's own query (less the signature), the
/// signed headers as S3 would read them from a request with this `Content-Length`, and an
/// unsigned payload; then the key derived from the secret, date, region and service.
fn sigv4_query_signature(url: &reqwest::Url, secret: &str, content_length: u64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::{Digest, Sha256};
    let hmac = |key: &[u8], text: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    // RFC 3986 unreserved characters stay; everything else is %XX (upper case), as SigV4 wants.
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(name, _)| name != "X-Amz-Signature")
        .map(|(name, value)| (encode(&name), encode(&value)))
        .collect();
    pairs.sort();
    let canonical_query = pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap()),
        None => url.host_str().unwrap().to_owned(),
    };
    let canonical_request = format!(
        "PUT\n{}\n{canonical_query}\ncontent-length:{content_length}\nhost:{host}\n\ncontent-length;host\nUNSIGNED-PAYLOAD",
        url.path()
    );
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let amz_date = &query["X-Amz-Date"];
    let scope = query["X-Amz-Credential"].split_once('/').unwrap().1.to_owned();
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let parts: Vec<&str> = scope.split('/').collect();
    let (date, region, service) = (parts[0], parts[1], parts[2]);
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date);
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part);
    }
    hex::encode(hmac(&key, &string_to_sign))
}
