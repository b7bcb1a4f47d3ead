//! API Gateway v2 events through the Lambda adapter, on the AWS backend found through SSM
//! (as a deployed Lambda finds it): what `lambda_http` hands the router and what goes back.

use base64::Engine;
use pawql::adapters::aws;
use resolvers::CatalogSettings;
use serde_json::{json, Value};

use crate::helpers::{fixture, IMAGE_FIELDS};
use crate::moto::{unique_stage, MotoServer};

fn event(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/events")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

const BOUNDARY: &str = "----pawqlBoundary7MA4YWxk";

/// A GraphQL multipart upload body, as a mobile client sends it.
fn multipart_upload(image: &[u8]) -> Vec<u8> {
    let operations = json!({
        "query": format!("mutation($image: Upload!) {{ upload(label: \"cat\", image: $image, weight: 0.25) {{ {IMAGE_FIELDS} }} }}"),
        "variables": { "image": null }
    });
    let mut body = Vec::new();
    for (name, value) in [
        ("operations", operations.to_string()),
        ("map", json!({ "0": ["variables.image"] }).to_string()),
    ] {
        body.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
        );
    }
    body.extend(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"cat.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
            .bytes(),
    );
    body.extend(image);
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    body
}

#[tokio::test]
async fn api_gateway_v2_events_go_through_the_same_router() {
    let clients = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&clients, &stage).await.unwrap();
    // As the Lambda API function runs: Rekognition, scans left to the stream handler.
    let scanning = pawql::app::AwsScanning::Stream { min_confidence: 80.0 };
    let router = pawql::app::aws_router(
        &clients,
        &stage,
        CatalogSettings::default(),
        scanning,
        Default::default(),
    )
    .await
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;

    // Multipart upload with a base64 body, as API Gateway delivers binary bodies.
    let image = fixture("images/cat_kde_tabby_q85.jpg");
    let mut upload = event("apigw-v2-multipart-upload.json");
    upload["body"] = json!(b64.encode(multipart_upload(&image)));
    let response = pawql::lambda::invoke(router.clone(), upload).await.unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["isBase64Encoded"], false, "JSON goes back as text");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["upload"]["contentType"], "image/jpeg");
    assert_eq!(body["data"]["upload"]["byteSize"], image.len());
    assert_eq!(body["data"]["upload"]["weight"], 0.25);

    // POST JSON.
    let response = pawql::lambda::invoke(router.clone(), event("apigw-v2-post-graphql.json"))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body["data"]["labels"][0],
        json!({ "label": "cat", "imageCount": 1, "totalWeight": 0.25 })
    );

    // A Function URL event (same payload format), its JSON body base64-encoded.
    let response = pawql::lambda::invoke(router.clone(), event("function-url-post-graphql-base64.json"))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["labels"][0], json!({ "label": "cat", "imageCount": 1 }));

    // GET with a query string; image bytes go back base64-encoded.
    let response = pawql::lambda::invoke(router.clone(), event("apigw-v2-get-random.json"))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    assert_eq!(response["isBase64Encoded"], true);
    assert_eq!(response["headers"]["content-type"], "image/jpeg");
    assert_eq!(b64.decode(response["body"].as_str().unwrap()).unwrap(), image);

    // A refused upload through the same path: a clear code, nothing stored.
    let mut refused = event("apigw-v2-multipart-upload.json");
    refused["body"] = json!(b64.encode(multipart_upload(b"GIF89a not really")));
    let response = pawql::lambda::invoke(router.clone(), refused).await.unwrap();
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(crate::helpers::error_codes(&body), ["UNSUPPORTED_MEDIA_TYPE"], "{body}");
    let response = pawql::lambda::invoke(router, event("apigw-v2-post-graphql.json"))
        .await
        .unwrap();
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["labels"][0]["imageCount"], 1);
}
