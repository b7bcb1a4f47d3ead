//! API Gateway v2 events through the Lambda adapter, on the AWS backend found through SSM
//! (as a deployed Lambda finds it): what `lambda_http` hands the router and what goes back.

use base64::Engine;
use pawql::adapters::aws;
use pawql::app::{BackendSpec, Wiring};
use resolvers::CatalogSettings;
use serde_json::{json, Value};

use crate::support::helpers::{fixture, IMAGE_FIELDS};
use crate::support::moto::{unique_stage, MotoServer};

fn event(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/events")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

const BOUNDARY: &str = "----pawqlBoundary7MA4YWxk";

/// A GraphQL multipart upload body, as a mobile client sends it (weight 0.25).
fn multipart_upload(image: &[u8]) -> Vec<u8> {
    let query = format!(
        "mutation($image: Upload!) {{ upload(label: \"cat\", image: $image, weight: 0.25) {{ {IMAGE_FIELDS} }} }}"
    );
    crate::support::helpers::multipart_body(BOUNDARY, &query, image)
}

const MOBILE_KEY: &str = "mobile-app-key-0123456789";

/// The Lambda API function's router, built as `pawql lambda` builds it for `PAWQL_HANDLER=api`
/// ([`pawql::app::Wiring::lambda_api`]; `main` also bounds it by the init phase's 10 s), with
/// the API function's IAM role.
async fn lambda_router(clients: &aws::AwsClients, stage: &str, options: pawql::server::ServerOptions) -> axum::Router {
    let clients = crate::iam::enforcing(clients, &[crate::iam::Function::Api], stage);
    Wiring::new(BackendSpec::aws(&clients, stage), CatalogSettings::default())
        .options(options)
        .lambda_api(80.0)
        .await
        .unwrap()
        .door
}

/// Sets the stage's SecureString parameter `name` (`apiKeys` or `adminKeys`) to `keys`.
pub(crate) async fn set_keys(clients: &aws::AwsClients, stage: &str, name: &str, keys: &str) {
    clients
        .ssm
        .put_parameter()
        .name(format!("{}{name}", aws::resources::parameter_path(stage)))
        .value(keys)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// A GraphQL JSON request as API Gateway delivers it, with `key` if any; (status, body).
pub(crate) async fn invoke_graphql(router: &axum::Router, key: Option<&str>, query: &str) -> (u64, Value) {
    let mut request = event("apigw-v2-post-graphql.json");
    request["body"] = json!(json!({ "query": query }).to_string());
    request["headers"].as_object_mut().unwrap().remove("content-length");
    if let Some(key) = key {
        request["headers"]["x-api-key"] = json!(key);
    }
    let response = pawql::lambda::invoke(router.clone(), request).await.unwrap();
    let body = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (response["statusCode"].as_u64().unwrap(), body)
}

const REWEIGHT_NOTHING: &str =
    "mutation { deleteImage(id: \"cat-0000000000000000000000000000000000000000000000000000000000000000\") }";

#[tokio::test]
async fn a_stage_without_keys_refuses_writes_through_the_lambda_and_names_the_parameter() {
    let clients = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&clients, &stage).await.unwrap();
    let router = lambda_router(&clients, &stage, Default::default()).await;

    let (status, body) = invoke_graphql(&router, None, REWEIGHT_NOTHING).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        crate::support::helpers::error_codes(&body),
        ["UNAUTHENTICATED"],
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("/pawql/{stage}/apiKeys")),
        "the refusal names the parameter to set: {message}"
    );
    // The upload path too (multipart, base64 body), and nothing is stored.
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut upload = event("apigw-v2-multipart-upload.json");
    upload["body"] = json!(b64.encode(multipart_upload(&fixture("images/cat_kde_tabby_q85.jpg"))));
    let response = pawql::lambda::invoke(router.clone(), upload).await.unwrap();
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        crate::support::helpers::error_codes(&body),
        ["UNAUTHENTICATED"],
        "{body}"
    );
    let (_, labels) = invoke_graphql(&router, None, "{ labels { imageCount } }").await;
    assert_eq!(labels["data"]["labels"][0]["imageCount"], 0, "{labels}");
    // Reads stay public.
    assert!(labels.get("errors").is_none(), "{labels}");
}

#[tokio::test]
async fn keys_in_ssm_are_re_read_so_a_revoked_key_stops_working() {
    let clients = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&clients, &stage).await.unwrap();
    // Admin keys alone close writes to callers without a key.
    set_keys(
        &clients,
        &stage,
        aws::resources::ADMIN_KEYS_PARAMETER,
        "old-admin-key-0123456789",
    )
    .await;
    let refresh = std::time::Duration::from_millis(300);
    let options = pawql::server::ServerOptions {
        key_refresh: refresh,
        ..Default::default()
    };
    let router = lambda_router(&clients, &stage, options).await;
    let (_, anonymous) = invoke_graphql(&router, None, REWEIGHT_NOTHING).await;
    assert_eq!(
        crate::support::helpers::error_codes(&anonymous),
        ["UNAUTHENTICATED"],
        "{anonymous}"
    );
    let (_, old) = invoke_graphql(&router, Some("old-admin-key-0123456789"), REWEIGHT_NOTHING).await;
    assert_eq!(old["data"]["deleteImage"], false, "the admin key writes: {old}");

    // Rotated in SSM: the old key is refused once the refresh interval has passed.
    set_keys(
        &clients,
        &stage,
        aws::resources::ADMIN_KEYS_PARAMETER,
        "new-admin-key-0123456789",
    )
    .await;
    tokio::time::sleep(refresh * 2).await;
    let (status, old) = invoke_graphql(&router, Some("old-admin-key-0123456789"), REWEIGHT_NOTHING).await;
    assert_eq!(
        (status, crate::support::helpers::error_codes(&old)),
        (401, vec!["UNAUTHENTICATED".to_owned()]),
        "{old}"
    );
    let (_, new) = invoke_graphql(&router, Some("new-admin-key-0123456789"), REWEIGHT_NOTHING).await;
    assert_eq!(new["data"]["deleteImage"], false, "{new}");
}

#[tokio::test]
async fn api_gateway_v2_events_go_through_the_same_router() {
    let clients = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&clients, &stage).await.unwrap();
    // Keys in SSM first, as "Deploying for real" says.
    set_keys(&clients, &stage, aws::resources::API_KEYS_PARAMETER, MOBILE_KEY).await;
    // As the Lambda API function runs: Rekognition, scans left to the stream handler.
    let router = lambda_router(&clients, &stage, Default::default()).await;
    let b64 = base64::engine::general_purpose::STANDARD;

    // Multipart upload with a base64 body, as API Gateway delivers binary bodies.
    let image = fixture("images/cat_kde_tabby_q85.jpg");
    let mut upload = event("apigw-v2-multipart-upload.json");
    upload["body"] = json!(b64.encode(multipart_upload(&image)));
    upload["headers"]["x-api-key"] = json!(MOBILE_KEY);
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
    refused["headers"]["x-api-key"] = json!(MOBILE_KEY);
    let response = pawql::lambda::invoke(router.clone(), refused).await.unwrap();
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        crate::support::helpers::error_codes(&body),
        ["UNSUPPORTED_MEDIA_TYPE"],
        "{body}"
    );
    let response = pawql::lambda::invoke(router, event("apigw-v2-post-graphql.json"))
        .await
        .unwrap();
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["labels"][0]["imageCount"], 1);
}

/// A valid PNG of `width`×`height` noise: incompressible, so its size is about 3 bytes a pixel.
pub(crate) fn noise_png(width: u32, height: u32) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let pixels: Vec<u8> = (0..width * height * 3).map(|_| rng.random()).collect();
    let image = image::RgbImage::from_raw(width, height, pixels).unwrap();
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A GET event for `path_and_query`, as API Gateway delivers it.
pub(crate) fn get_event(path: &str, query: &str) -> Value {
    let mut request = event("apigw-v2-get-random.json");
    request["rawPath"] = json!(path);
    request["rawQueryString"] = json!(query);
    request["requestContext"]["http"]["path"] = json!(path);
    request
}

#[tokio::test]
async fn an_image_over_the_lambda_payload_limit_stays_fetchable_and_base64_says_why_not() {
    let clients = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&clients, &stage).await.unwrap();
    set_keys(&clients, &stage, aws::resources::API_KEYS_PARAMETER, MOBILE_KEY).await;
    let router = lambda_router(&clients, &stage, Default::default()).await;

    // 1,400×1,200 noise: ~5 MB, within the 10 MB upload limit; as base64 ~6.7 MB, past what
    // one Lambda response can carry.
    let big = noise_png(1400, 1200);
    assert!((4_800_000..10_000_000).contains(&big.len()), "{}", big.len());
    let b64 = base64::engine::general_purpose::STANDARD;

    // Sent in the request itself it cannot even reach the function (6 MB request payload,
    // base64 by API Gateway): large files take the presigned path.
    let mut direct = event("apigw-v2-multipart-upload.json");
    direct["body"] = json!(b64.encode(multipart_upload(&big)));
    direct["headers"]["x-api-key"] = json!(MOBILE_KEY);
    let refused = pawql::lambda::invoke(router.clone(), direct).await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("request must be smaller"),
        "{refused:#}"
    );

    let (_, grant) = invoke_graphql(
        &router,
        Some(MOBILE_KEY),
        &format!(
            "mutation {{ requestUpload(label: \"cat\", byteSize: {}) {{ ticket uploadUrl }} }}",
            big.len()
        ),
    )
    .await;
    let grant = &grant["data"]["requestUpload"];
    let put = crate::support::helpers::http_client()
        .put(grant["uploadUrl"].as_str().unwrap())
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let complete = format!(
        "mutation {{ completeUpload(ticket: \"{}\") {{ id byteSize }} }}",
        grant["ticket"].as_str().unwrap()
    );
    let (_, filed) = invoke_graphql(&router, Some(MOBILE_KEY), &complete).await;
    assert_eq!(filed["data"]["completeUpload"]["byteSize"], big.len(), "{filed}");

    // petAPI's /random: a redirect to the image's URL, which serves the very bytes.
    let response = pawql::lambda::invoke(router.clone(), get_event("/random", "label=cat"))
        .await
        .unwrap();
    assert_eq!(response["statusCode"], 302, "{}", response["headers"]);
    let location = response["headers"]["location"].as_str().unwrap();
    let fetched = crate::support::helpers::http_client()
        .get(location)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), big);

    // base64 stops at a clear code instead of a response Lambda would refuse; url still works.
    let (status, body) = invoke_graphql(&router, None, "{ randomImage(label: \"cat\") { id base64 } }").await;
    assert_eq!(
        (status, crate::support::helpers::error_codes(&body)),
        (200, vec!["RESPONSE_TOO_LARGE".to_owned()]),
        "{body}"
    );
    let (_, body) = invoke_graphql(&router, None, "{ randomImage(label: \"cat\") { url } }").await;
    assert!(body["data"]["randomImage"]["url"].is_string(), "{body}");

    // Small images in base64 still come back, up to the budget of one response.
    let small = fixture("images/cat_kde_tabby_q85.jpg");
    let mut upload = event("apigw-v2-multipart-upload.json");
    upload["body"] = json!(b64.encode(multipart_upload(&small)));
    upload["headers"]["x-api-key"] = json!(MOBILE_KEY);
    pawql::lambda::invoke(router.clone(), upload).await.unwrap();
    let (_, many) = invoke_graphql(&router, None, "{ randomImages(label: \"cat\", count: 100) { base64 } }").await;
    let codes = crate::support::helpers::error_codes(&many);
    assert!(
        !codes.is_empty() && codes.iter().all(|c| c == "RESPONSE_TOO_LARGE"),
        "{codes:?}"
    );
}

#[tokio::test]
async fn the_lambda_reports_picks_uploads_refusals_and_scans_as_emf_metrics() {
    use tracing::instrument::WithSubscriber;
    use tracing_subscriber::layer::SubscriberExt;

    let clients = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&clients, &stage).await.unwrap();
    set_keys(&clients, &stage, aws::resources::API_KEYS_PARAMETER, MOBILE_KEY).await;
    let router = lambda_router(&clients, &stage, Default::default()).await;
    let scanner = crate::scan_stream::scan_handler(
        &crate::iam::enforcing(&clients, &[crate::iam::Function::Scan], &stage),
        &stage,
    )
    .await;

    let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let subscriber = tracing_subscriber::registry().with(pawql::observability::EmfLayer::new(&stage, buffer.clone()));
    async {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut upload = event("apigw-v2-multipart-upload.json");
        upload["body"] = json!(b64.encode(multipart_upload(&fixture("images/cat_kde_tabby_q85.jpg"))));
        upload["headers"]["x-api-key"] = json!(MOBILE_KEY);
        let response = pawql::lambda::invoke(router.clone(), upload.clone()).await.unwrap();
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        let id = body["data"]["upload"]["id"].as_str().unwrap().to_owned();
        // The same bytes again: not a new upload.
        pawql::lambda::invoke(router.clone(), upload).await.unwrap();
        invoke_graphql(&router, None, "{ randomImages(label: \"cat\", count: 5) { id } }").await;
        invoke_graphql(&router, None, REWEIGHT_NOTHING).await;
        invoke_graphql(&router, Some(MOBILE_KEY), "{ image(id: \"cat-xyz\") { id } }").await;
        let (_, scan) = invoke_graphql(
            &router,
            Some(MOBILE_KEY),
            &format!("mutation {{ requestScan(imageId: \"{id}\") {{ id }} }}"),
        )
        .await;
        scanner
            .run(
                &crate::scan::scan_id(scan["data"]["requestScan"]["id"].as_str().unwrap()),
                true,
            )
            .await
            .unwrap();
    }
    .with_subscriber(subscriber)
    .await;

    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let metric = |name: &str| -> Vec<&Value> { lines.iter().filter(|l| l.get(name).is_some()).collect() };
    assert_eq!(metric("Uploads").len(), 1, "one new image, one repeat: {text}");
    assert_eq!(
        metric("Picks")
            .iter()
            .map(|l| l["Picks"].as_f64().unwrap())
            .sum::<f64>(),
        5.0,
        "{text}"
    );
    let codes: Vec<&str> = metric("Refusals").iter().map(|l| l["Code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["UNAUTHENTICATED", "BAD_USER_INPUT"], "{text}");
    let scans = metric("ScansFinished");
    assert_eq!(scans.len(), 1, "{text}");
    assert_eq!(scans[0]["Status"], "SUCCEEDED");
    assert!(metric("ScanLatency")[0]["ScanLatency"].as_f64().unwrap() >= 0.0);
    for line in &lines {
        assert_eq!(line["Stage"], stage.as_str());
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "pawql", "{line}");
    }
}

/// A petAPI `/upload` form (label cat, weight 0.5) around `image`.
fn petapi_form(image: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in [("label", "cat"), ("weight", "0.5")] {
        body.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
        );
    }
    body.extend(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"img\"; filename=\"c.png\"\r\nContent-Type: image/png\r\n\r\n")
            .bytes(),
    );
    body.extend(image);
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    body
}

#[tokio::test]
async fn a_file_too_large_for_the_lambda_payload_is_refused_by_pawql_naming_request_upload() {
    let clients = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&clients, &stage).await.unwrap();
    set_keys(&clients, &stage, aws::resources::API_KEYS_PARAMETER, MOBILE_KEY).await;
    let router = lambda_router(&clients, &stage, Default::default()).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let direct = pawql::server::direct_upload_limit(pawql::lambda::PAYLOAD_LIMIT);
    let max_bytes = resolvers::domain::validation::UploadLimits::default().max_bytes;
    assert!(direct < max_bytes && direct > 4_400_000, "{direct}");

    // A valid PNG just over what a base64 body inside 6 MB can carry, but whose event Lambda
    // still delivers: pawql's refusal, not AWS's.
    let image = noise_png(1300, 1200);
    assert!(image.len() > direct, "{}", image.len());
    let mut graphql = event("apigw-v2-multipart-upload.json");
    graphql["body"] = json!(b64.encode(multipart_upload(&image)));
    graphql["headers"]["x-api-key"] = json!(MOBILE_KEY);
    let mut rest = graphql.clone();
    rest["rawPath"] = json!("/upload");
    rest["requestContext"]["http"]["path"] = json!("/upload");
    rest["body"] = json!(b64.encode(petapi_form(&image)));
    for (door, request) in [("upload", graphql), ("/upload", rest)] {
        let response = pawql::lambda::invoke(router.clone(), request)
            .await
            .expect("the event fits Lambda's 6 MB");
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        assert_eq!(response["statusCode"], 413, "{door}: {body}");
        assert_eq!(
            crate::support::helpers::error_codes(&body),
            ["PAYLOAD_TOO_LARGE"],
            "{door}: {body}"
        );
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("requestUpload") && message.contains(&direct.to_string()),
            "{door}: the refusal names the limit and the way round it: {message}"
        );
    }
    let (_, labels) = invoke_graphql(&router, None, "{ labels { imageCount } }").await;
    assert_eq!(labels["data"]["labels"][0]["imageCount"], 0, "nothing stored: {labels}");

    // A file at the limit goes through.
    let fits = noise_png(1200, 1200);
    assert!(fits.len() <= direct, "{}", fits.len());
    let mut upload = event("apigw-v2-multipart-upload.json");
    upload["body"] = json!(b64.encode(multipart_upload(&fits)));
    upload["headers"]["x-api-key"] = json!(MOBILE_KEY);
    let response = pawql::lambda::invoke(router.clone(), upload).await.unwrap();
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["upload"]["byteSize"], fits.len(), "{body}");
}

#[tokio::test]
async fn keys_that_cannot_be_re_read_are_trusted_for_the_refresh_interval_and_no_longer() {
    let plain = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&plain, &stage).await.unwrap();
    set_keys(&plain, &stage, aws::resources::API_KEYS_PARAMETER, MOBILE_KEY).await;
    let failing = crate::support::canned::CannedAnswers::default();
    let clients = aws::AwsClients {
        ssm: aws_sdk_ssm::Client::from_conf(plain.ssm.config().to_builder().interceptor(failing.clone()).build()),
        ..plain.clone()
    };
    let refresh = std::time::Duration::from_millis(600);
    // (`lambda_router` gives the clients the API function's IAM.)
    let options = pawql::server::ServerOptions {
        key_refresh: refresh,
        ..Default::default()
    };
    let router = lambda_router(&clients, &stage, options).await;
    let started = tokio::time::Instant::now();
    // SSM throttles every re-read from now on: the SDK and pawql retry it for about 20 s.
    failing.arm(
        "GetParametersByPath",
        10_000,
        crate::support::canned::Answer::Error("ThrottlingException"),
    );
    // No request waits on those retries: each one is answered long before they end.
    let answered = |key| {
        let router = router.clone();
        async move {
            tokio::time::timeout(
                std::time::Duration::from_secs(8),
                invoke_graphql(&router, key, REWEIGHT_NOTHING),
            )
            .await
            .expect("answered without waiting on SSM's retries")
        }
    };
    let (_, fresh) = answered(Some(MOBILE_KEY)).await;
    assert_eq!(fresh["data"]["deleteImage"], false, "{fresh}");
    // Half way through the keys' trust: a re-read starts in the background, the key works.
    tokio::time::sleep_until(started + refresh * 3 / 4).await;
    let (_, trusted) = answered(Some(MOBILE_KEY)).await;
    assert_eq!(trusted["data"]["deleteImage"], false, "{trusted}");
    // Past it, with the re-read still failing: a presented key gets its own code.
    tokio::time::sleep_until(started + refresh * 3 / 2).await;
    let (status, stale) = answered(Some(MOBILE_KEY)).await;
    assert_eq!(
        (status, crate::support::helpers::error_codes(&stale)),
        (503, vec!["KEYS_UNAVAILABLE".to_owned()]),
        "{stale}"
    );
    assert!(failing.injected("GetParametersByPath") >= 1, "the re-read was tried");
    // Reads that need no key still answer; a write without one is refused as ever.
    let (_, labels) = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        invoke_graphql(&router, None, "{ labels { imageCount } }"),
    )
    .await
    .unwrap();
    assert!(labels.get("errors").is_none(), "{labels}");
    let (_, keyless_write) = invoke_graphql(&router, None, REWEIGHT_NOTHING).await;
    assert_eq!(
        crate::support::helpers::error_codes(&keyless_write),
        ["UNAUTHENTICATED"]
    );

    // SSM answers again: the key works once a re-read succeeds.
    failing.arm(
        "GetParametersByPath",
        0,
        crate::support::canned::Answer::Error("ThrottlingException"),
    );
    let recovered = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, body) = answered(Some(MOBILE_KEY)).await;
        if body["data"]["deleteImage"] == false {
            break;
        }
        assert_eq!(
            crate::support::helpers::error_codes(&body),
            ["KEYS_UNAVAILABLE"],
            "{body}"
        );
        assert!(tokio::time::Instant::now() < recovered, "keys never re-read: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Every object key in the stage's bucket.
async fn bucket_keys(clients: &aws::AwsClients, stage: &str) -> Vec<String> {
    let bucket = aws::load_parameters(&clients.ssm, stage).await.unwrap()["bucket"].clone();
    let listed = clients.s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_upload_stops_at_the_invocation_deadline_cleans_up_and_says_so() {
    let plain = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&plain, &stage).await.unwrap();
    set_keys(&plain, &stage, aws::resources::API_KEYS_PARAMETER, MOBILE_KEY).await;
    // The table refuses every transaction for load: retried, and never going to succeed.
    let busy = crate::support::canned::CannedAnswers::default();
    let clients = aws::AwsClients {
        dynamodb: crate::support::canned::answering(&plain.dynamodb, &busy),
        ..plain.clone()
    };
    let router = lambda_router(&clients, &stage, Default::default()).await;
    busy.arm("TransactWriteItems", 100_000, crate::support::canned::THROTTLED_WRITE);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut upload = event("apigw-v2-multipart-upload.json");
    upload["body"] = json!(b64.encode(multipart_upload(&fixture("images/cat_kde_tabby_q85.jpg"))));
    upload["headers"]["x-api-key"] = json!(MOBILE_KEY);

    // A function with 12 s: the retries stop a margin before its end, the object the upload
    // put is removed, and the client is told, instead of Lambda killing it mid-way.
    let timeout = std::time::Duration::from_secs(12);
    let response = pawql::lambda::invoke_within(router.clone(), upload.clone(), timeout)
        .await
        .expect("answered before the invocation's deadline");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(crate::support::helpers::error_codes(&body), ["TIMED_OUT"], "{body}");
    assert!(busy.injected("TransactWriteItems") > 1, "it did retry");
    assert_eq!(
        bucket_keys(&plain, &stage).await,
        Vec::<String>::new(),
        "the put object was removed"
    );

    // With less time left than an upload needs, nothing is even tried.
    let tried = busy.injected("TransactWriteItems");
    let response = pawql::lambda::invoke_within(router.clone(), upload, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(crate::support::helpers::error_codes(&body), ["TIMED_OUT"], "{body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    assert_eq!(busy.injected("TransactWriteItems"), tried, "refused before it started");
    assert_eq!(bucket_keys(&plain, &stage).await, Vec::<String>::new());
    busy.arm("TransactWriteItems", 0, crate::support::canned::THROTTLED_WRITE);
    let (_, labels) = invoke_graphql(&router, None, "{ labels { imageCount } }").await;
    assert_eq!(labels["data"]["labels"][0]["imageCount"], 0, "no row: {labels}");
}

/// Lambda kills an init phase that passes 10 s. With SSM throttling every read of the stage,
/// each function's start-up gives up inside that, saying why, instead of being killed mid-way.
#[tokio::test]
async fn a_cold_start_that_cannot_read_ssm_gives_up_inside_the_init_limit() {
    let plain = MotoServer::shared().await.clients().await;
    let stage = unique_stage();
    aws::provision(&plain, &stage).await.unwrap();
    let throttled = crate::support::canned::CannedAnswers::default();
    throttled.arm(
        "GetParametersByPath",
        10_000,
        crate::support::canned::Answer::Error("ThrottlingException"),
    );
    let clients = crate::iam::enforcing(
        &aws::AwsClients {
            ssm: aws_sdk_ssm::Client::from_conf(plain.ssm.config().to_builder().interceptor(throttled.clone()).build()),
            ..plain.clone()
        },
        &[crate::iam::Function::Api],
        &stage,
    );
    let started = std::time::Instant::now();
    let failed = pawql::lambda::within_init(
        Wiring::new(BackendSpec::aws(&clients, &stage), CatalogSettings::default()).lambda_api(80.0),
    )
    .await
    .err()
    .expect("SSM never answers");
    let took = started.elapsed();
    assert!(took < pawql::lambda::INIT_LIMIT, "gave up after {took:?}");
    assert!(throttled.injected("GetParametersByPath") >= 2, "it did retry");
    let text = format!("{failed:#}");
    assert!(
        text.contains("GetParametersByPath") && text.contains("deadline"),
        "says what did not finish: {text}"
    );
}

/// The API function's timeout in serverless.yml is the one the code plans its deadline on,
/// and below API Gateway's 30 s (docs/aws-rules.md, A1).
#[test]
fn the_deployed_api_timeout_is_the_one_the_code_plans_for() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("serverless.yml");
    let yml: serde_yaml::Value = serde_yaml::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let timeout = yml["provider"]["timeout"].as_u64().expect("provider.timeout");
    assert_eq!(timeout, pawql::lambda::API_TIMEOUT.as_secs());
    assert!(timeout < 30, "API Gateway's HTTP API integration limit");
    assert!(
        yml["functions"]["api"]["timeout"].is_null(),
        "the api function takes the provider's"
    );
}
