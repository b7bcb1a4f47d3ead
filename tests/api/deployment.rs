//! The deployment and its local twin agree: `serverless.yml` declares the same tables, keys,
//! index and SSM parameters as the definition `pawql provision` creates on an emulator, with
//! least-privilege IAM. And the real binary, `pawql provision` then `pawql serve --backend aws`
//! with `AWS_ENDPOINT_URL` at moto, is a working local AWS stack.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pawql::adapters::aws::resources::{self, Resources, TableSpec};
use serde_yaml::Value;

use crate::support::helpers::fixture;
use crate::support::moto::{unique_stage, MotoServer};

fn serverless() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("serverless.yml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn key_schema(keys: &Value) -> Vec<(String, String)> {
    keys.as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap().to_owned(),
                k["KeyType"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expected_keys(partition: &str, sort: Option<&str>) -> Vec<(String, String)> {
    let mut keys = vec![(partition.to_owned(), "HASH".to_owned())];
    keys.extend(sort.map(|s| (s.to_owned(), "RANGE".to_owned())));
    keys
}

fn check_table(declared: &Value, spec: &TableSpec) {
    let props = &declared["Properties"];
    assert_eq!(props["TableName"].as_str().unwrap(), spec.name("${sls:stage}"));
    assert_eq!(props["BillingMode"], "PAY_PER_REQUEST", "{}: on-demand", spec.base_name);
    assert_eq!(
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        Value::Bool(true),
        "{}: point-in-time recovery",
        spec.base_name
    );
    assert_eq!(
        key_schema(&props["KeySchema"]),
        expected_keys(spec.partition_key.0, spec.sort_key.map(|k| k.0))
    );
    let mut attributes = vec![spec.partition_key];
    attributes.extend(spec.sort_key);
    let mut indexes = Vec::new();
    for index in &spec.indexes {
        attributes.extend([index.partition_key, index.sort_key]);
        indexes.push((
            index.name.to_owned(),
            expected_keys(index.partition_key.0, Some(index.sort_key.0)),
        ));
    }
    let expected: BTreeSet<(String, String)> = attributes
        .iter()
        .map(|(n, t)| (n.to_string(), t.as_str().to_owned()))
        .collect();
    let declared_attributes: BTreeSet<(String, String)> = props["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap().to_owned(),
                a["AttributeType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        declared_attributes, expected,
        "{}: attribute definitions",
        spec.base_name
    );
    let declared_indexes: Vec<(String, Vec<(String, String)>)> = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .map(|gsis| {
            gsis.iter()
                .map(|g| {
                    let name = g["IndexName"].as_str().unwrap().to_owned();
                    let spec = spec
                        .indexes
                        .iter()
                        .find(|i| i.name == name)
                        .expect("an index the code knows");
                    assert_eq!(g["Projection"]["ProjectionType"], spec.projection(), "{name}");
                    (name, key_schema(&g["KeySchema"]))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(declared_indexes, indexes, "{}: indexes", spec.base_name);
    assert_eq!(
        props["StreamSpecification"]["StreamViewType"].as_str(),
        spec.stream.then_some("NEW_IMAGE"),
        "{}: stream",
        spec.base_name
    );
    assert_eq!(
        props["TimeToLiveSpecification"]["AttributeName"].as_str(),
        spec.ttl_attribute,
        "{}: TTL",
        spec.base_name
    );
}

#[test]
fn serverless_yml_declares_what_provision_creates() {
    let yml = serverless();
    let declared = yml["resources"]["Resources"].as_mapping().unwrap();
    let of_type = |t: &str| -> Vec<&Value> { declared.values().filter(|r| r["Type"] == t).collect() };

    let tables = of_type("AWS::DynamoDB::Table");
    assert_eq!(tables.len(), resources::tables().len());
    for spec in resources::tables() {
        let table = tables
            .iter()
            .find(|t| t["Properties"]["TableName"].as_str() == Some(&spec.name("${sls:stage}")))
            .unwrap_or_else(|| panic!("serverless.yml has no table {}", spec.name("${sls:stage}")));
        check_table(table, &spec);
    }

    let parameters: BTreeSet<String> = of_type("AWS::SSM::Parameter")
        .iter()
        .map(|p| p["Properties"]["Name"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = Resources::for_stage("x")
        .parameters()
        .iter()
        .map(|(name, _)| format!("{}{name}", resources::parameter_path("${sls:stage}")))
        .collect();
    assert_eq!(parameters, expected);

    let bucket = of_type("AWS::S3::Bucket");
    assert_eq!(bucket.len(), 1);
    let block = &bucket[0]["Properties"]["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[setting], Value::Bool(true), "{setting}");
    }
    assert!(!bucket[0]["Properties"]["BucketEncryption"].is_null(), "encrypted");

    let provider = &yml["provider"];
    assert_eq!(provider["runtime"], "provided.al2023");
    assert_eq!(provider["architecture"], "arm64");
    assert_eq!(provider["environment"]["PAWQL_STAGE"], "${sls:stage}");
    assert_eq!(
        yml["functions"]["api"]["package"]["artifact"], "target/lambda/pawql/bootstrap.zip",
        "where `cargo lambda build --profile lambda-artifact --arm64 --output-format zip` puts the binary"
    );
    // Least privilege: a role per function, no wildcard actions, no managed policies, and a
    // wildcard resource only for rekognition:DetectLabels (which has no resource-level
    // permissions), alone, on the scan handler's role only.
    assert!(provider["iam"].is_null(), "no shared role: each function names its own");
    let declared = &yml["resources"]["Resources"];
    let mut roles = BTreeSet::new();
    for function in ["api", "stream", "scan"] {
        let role = yml["functions"][function]["role"].as_str().unwrap();
        assert!(roles.insert(role.to_owned()), "{function} shares {role}");
        let properties = &declared[role]["Properties"];
        assert!(properties["ManagedPolicyArns"].is_null(), "{role}");
        for policy in properties["Policies"].as_sequence().unwrap() {
            for statement in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
                let actions = strings(&statement["Action"]);
                for action in &actions {
                    assert!(!action.contains('*'), "wildcard action {action} on {role}");
                }
                if strings(&statement["Resource"]).iter().any(|r| r == "*") {
                    assert_eq!(actions, ["rekognition:DetectLabels"], "wildcard resource on {role}");
                    assert_eq!(function, "scan", "only the scan handler detects");
                }
            }
        }
    }

    // The scan handler: the same artifact, told apart by PAWQL_HANDLER, fed by the scan
    // table's stream with retries, bisecting, a dead-letter queue, and a sweep.
    let scan = &yml["functions"]["scan"];
    assert_eq!(
        scan["package"]["artifact"],
        yml["functions"]["api"]["package"]["artifact"]
    );
    assert_eq!(scan["environment"]["PAWQL_HANDLER"], "scan-stream");
    let events = scan["events"].as_sequence().unwrap();
    let stream = events.iter().find_map(|e| e.get("stream")).expect("a stream event");
    assert_eq!(stream["type"], "dynamodb");
    assert_eq!(strings(&stream["arn"]["Fn::GetAtt"]), ["ScanTable", "StreamArn"]);
    assert_eq!(stream["functionResponseType"], "ReportBatchItemFailures");
    assert_eq!(stream["bisectBatchOnFunctionError"], Value::Bool(true));
    assert!(stream["maximumRetryAttempts"].as_u64().unwrap() > 0);
    assert_eq!(
        strings(&stream["destinations"]["onFailure"]["arn"]["Fn::GetAtt"]),
        ["ScanDeadLetterQueue", "Arn"]
    );
    assert_eq!(declared[&Value::from("ScanDeadLetterQueue")]["Type"], "AWS::SQS::Queue");
    let filter = &stream["filterPatterns"][0];
    assert_eq!(strings(&filter["dynamodb"]["NewImage"]["status"]["S"]), ["PENDING"]);
    let sweep = events.iter().find_map(|e| e.get("schedule")).expect("a sweep schedule");
    assert_eq!(sweep["rate"], "rate(15 minutes)");
    assert_eq!(
        pawql::scan_stream::SWEEP_AFTER,
        chrono::Duration::minutes(15),
        "the sweep takes over scans as stale as its rate"
    );
    // The handler plans its work around the deadline it assumes: the function's timeout.
    assert_eq!(
        scan["timeout"].as_u64(),
        Some(pawql::scan_stream::FUNCTION_TIMEOUT.as_secs()),
        "serverless.yml's scan timeout and scan_stream::FUNCTION_TIMEOUT"
    );
}

/// Kills the child on drop, so a failed assertion does not leave a server running.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn pawql_provision_then_serve_backend_aws_is_a_local_aws_stack() {
    let moto = MotoServer::shared().await;
    let stage = unique_stage();
    let binary = env!("CARGO_BIN_EXE_pawql");
    // `provision` stands in for the deploy (CloudFormation's rights); `serve` then acts as the
    // API and scan functions' roles on this stage only, enforced by moto's server.
    let serving_key = crate::iam::acting_as(&[crate::iam::Function::Api, crate::iam::Function::Scan], &stage);
    let aws_env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("PAWQL_STAGE", stage.as_str()),
    ];
    let status = Command::new(binary)
        .arg("provision")
        .envs(aws_env)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Running(
        Command::new(binary)
            .args(["serve", "--backend", "aws", "--addr", &format!("127.0.0.1:{port}")])
            .envs(aws_env)
            .env("AWS_ACCESS_KEY_ID", &serving_key)
            .env_remove("PAWQL_BUCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let address = format!("http://127.0.0.1:{port}");
    let client = crate::support::helpers::http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{address}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "pawql serve --backend aws did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // petAPI's upload form and random route, through S3 and DynamoDB on moto.
    let png = fixture("images/cat_chelsea.png");
    let form = reqwest::multipart::Form::new()
        .text("label", "cat")
        .part("img", reqwest::multipart::Part::bytes(png.clone()).file_name("c.png"));
    let uploaded = client
        .post(format!("{address}/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 200, "{:?}", uploaded.text().await);
    let body: serde_json::Value = client
        .post(format!("{address}/graphql"))
        .json(&serde_json::json!({ "query": "{ randomImage(label: \"cat\") { url } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = body["data"]["randomImage"]["url"].as_str().unwrap();
    assert!(url.starts_with(&moto.endpoint), "a presigned S3 URL on moto: {url}");
    assert_eq!(
        crate::support::helpers::http_client()
            .get(url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        png.as_slice()
    );
}
