//! IAM as a real account would enforce it, on moto (which enforces none): an SDK interceptor on
//! every client the code under test uses works out what each request needs (the IAM action and
//! the resource, as AWS authorises it) and refuses it, as AWS would with `AccessDenied`, unless
//! the role of the function making it (`serverless.yml`: each function has its own) allows
//! it. A new call without a grant then fails the test that makes it, instead of a deployment.
//!
//! The rules modelled are the ones pawql's calls touch: DynamoDB transactions and batches are
//! authorised per item action and table (`TransactWriteItems` needs `PutItem`, `UpdateItem`,
//! `DeleteItem` or `ConditionCheckItem` on each table it writes; `TransactGetItems` needs
//! `GetItem`), a `Query` or `Scan` of an index needs the index's ARN, `ListObjectsV2` needs
//! `s3:ListBucket` on the bucket, `HeadObject` needs `s3:GetObject`, and Rekognition reading an
//! S3 object needs the caller's `s3:GetObject` on it. Log and stream-read grants are read but
//! not exercised: no SDK client here makes those calls.

use std::sync::OnceLock;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef as SerializedContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use pawql::adapters::aws::AwsClients;
use serde_json::Value;
use serde_yaml::Value as Yaml;

/// One permission: an IAM action on a resource, both in a form the two sides share:
/// `table/<base name>`, `table/<base name>/index/<index>`, `bucket`, `bucket/<key>`,
/// `parameter/pawql/<stage>…`, `queue`, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub action: String,
    pub resource: String,
}

/// A deployed function, whose role a client acts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// The GraphQL API, and the operator commands that run with its rights.
    Api,
    /// The subscriptions stream behind the Function URL.
    Stream,
    /// The scan handler fed by the scan table's stream.
    Scan,
}

impl Function {
    const ALL: [Function; 3] = [Function::Api, Function::Stream, Function::Scan];

    fn name(self) -> &'static str {
        match self {
            Function::Api => "api",
            Function::Stream => "stream",
            Function::Scan => "scan",
        }
    }
}

type Statements = Vec<(Vec<String>, Vec<String>)>;

/// The Allow statements of each function's role, as (actions, resource patterns).
fn roles() -> &'static std::collections::HashMap<Function, Statements> {
    static ROLES: OnceLock<std::collections::HashMap<Function, Statements>> = OnceLock::new();
    ROLES.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("serverless.yml");
        let yml: Yaml = serde_yaml::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let resources = &yml["resources"]["Resources"];
        Function::ALL
            .into_iter()
            .map(|function| {
                let role = yml["functions"][function.name()]["role"]
                    .as_str()
                    .unwrap_or_else(|| panic!("the {} function names no role of its own", function.name()));
                let statements = resources[role]["Properties"]["Policies"]
                    .as_sequence()
                    .unwrap_or_else(|| panic!("{role} has no inline policies"))
                    .iter()
                    .flat_map(|policy| policy["PolicyDocument"]["Statement"].as_sequence().unwrap().clone())
                    .filter(|s| s["Effect"] == "Allow")
                    .map(|s| {
                        let actions = s["Action"]
                            .as_sequence()
                            .unwrap()
                            .iter()
                            .map(|a| a.as_str().unwrap().to_owned())
                            .collect();
                        let patterns = match &s["Resource"] {
                            Yaml::Sequence(list) => list.iter().map(|r| pattern(r, resources)).collect(),
                            one => vec![pattern(one, resources)],
                        };
                        (actions, patterns)
                    })
                    .collect();
                (function, statements)
            })
            .collect()
    })
}

/// A resource of the template as a pattern over the shared form.
fn pattern(resource: &Yaml, resources: &Yaml) -> String {
    if let Some(text) = resource.as_str() {
        return text.replace("${sls:stage}", "*");
    }
    if let Some(get_att) = resource.get("Fn::GetAtt") {
        let logical = get_att[0].as_str().unwrap();
        // Log groups are the Framework's, not in `resources`; no client here writes logs.
        if logical.ends_with("LogGroup") {
            return format!("loggroup/{logical}");
        }
        let declared = &resources[logical];
        if get_att[1] == "StreamArn" {
            let name = declared["Properties"]["TableName"].as_str().unwrap();
            return format!("table/{}/stream/*", name.trim_start_matches("pawql-${sls:stage}-"));
        }
        return match declared["Type"].as_str().unwrap() {
            "AWS::DynamoDB::Table" => {
                let name = declared["Properties"]["TableName"].as_str().unwrap();
                format!("table/{}", name.trim_start_matches("pawql-${sls:stage}-"))
            }
            "AWS::S3::Bucket" => "bucket".to_owned(),
            "AWS::SQS::Queue" => "queue".to_owned(),
            other => panic!("a grant on a {other} the check does not know"),
        };
    }
    if let Some(join) = resource.get("Fn::Join") {
        let separator = join[0].as_str().unwrap();
        let parts: Vec<String> = join[1]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|part| match part.as_str() {
                Some(text) => text.to_owned(),
                None if part.get("Ref").is_some() => "*".to_owned(),
                None => pattern(part, resources),
            })
            .collect();
        let joined = parts.join(separator).replace("${sls:stage}", "*");
        // ARNs of SSM parameters and KMS keys: keep what follows the account.
        return match joined.find(":parameter/").or_else(|| joined.find(":key/")) {
            Some(at) => joined[at + 1..].to_owned(),
            None => joined,
        };
    }
    panic!("a resource the check does not know: {resource:?}")
}

/// `*` matches any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head) && (0..=text.len() - head.len()).any(|i| glob(tail, &text[head.len() + i..]))
        }
    }
}

/// Whether the role of `function` allows `permission`.
pub fn allowed(function: Function, permission: &Permission) -> bool {
    roles()[&function].iter().any(|(actions, patterns)| {
        actions.iter().any(|a| glob(a, &permission.action)) && patterns.iter().any(|p| glob(p, &permission.resource))
    })
}

/// A table's base name from its deployed name `pawql-{stage}-{base}`.
fn table(name: &str) -> String {
    let base = name.splitn(3, '-').nth(2).unwrap_or(name);
    format!("table/{base}")
}

/// What one DynamoDB request needs.
fn dynamodb(operation: &str, body: &Value) -> Vec<Permission> {
    let need = |action: &str, resource: String| Permission {
        action: format!("dynamodb:{action}"),
        resource,
    };
    match operation {
        "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|item| item.as_object().unwrap().iter())
            .map(|(kind, part)| {
                let action = match kind.as_str() {
                    "Put" => "PutItem",
                    "Update" => "UpdateItem",
                    "Delete" => "DeleteItem",
                    "ConditionCheck" => "ConditionCheckItem",
                    "Get" => "GetItem",
                    other => panic!("a transaction part the check does not know: {other}"),
                };
                need(action, table(part["TableName"].as_str().unwrap()))
            })
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .unwrap()
            .keys()
            .map(|name| need(operation, table(name)))
            .collect(),
        _ => {
            let mut resource = table(body["TableName"].as_str().unwrap_or("?"));
            if let Some(index) = body["IndexName"].as_str() {
                resource = format!("{resource}/index/{index}");
            }
            vec![need(operation, resource)]
        }
    }
}

/// What one S3 request needs, from its URI as serialized. That is the key alone (`/key?…`):
/// the endpoint, and with it a path-style bucket, is added after serialization. A full
/// path-style URI (`http://host/bucket/key?…`) is read too.
fn s3(operation: &str, uri: &str) -> Vec<Permission> {
    let path = match uri.split_once("://") {
        Some((_, rest)) => rest
            .split_once('/')
            .map_or("", |(_, p)| p)
            .split_once('/')
            .map_or("", |(_, key)| key),
        None => uri.trim_start_matches('/'),
    };
    let key = path.split('?').next().unwrap_or("");
    let object = format!("bucket/{key}");
    let (action, resource) = match operation {
        "GetObject" | "HeadObject" => ("GetObject", object),
        "PutObject" => ("PutObject", object),
        "DeleteObject" => ("DeleteObject", object),
        "ListObjectsV2" | "ListObjects" => ("ListBucket", "bucket".to_owned()),
        other => (other, object),
    };
    vec![Permission {
        action: format!("s3:{action}"),
        resource,
    }]
}

/// Everything a request of `service.operation` needs.
pub fn needs(service: &str, operation: &str, uri: &str, body: &[u8]) -> Vec<Permission> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match service {
        "dynamodb" => dynamodb(operation, &json),
        "s3" => s3(operation, uri),
        "ssm" => {
            let name = json["Path"].as_str().or(json["Name"].as_str()).unwrap_or("?");
            vec![Permission {
                action: format!("ssm:{operation}"),
                resource: format!("parameter{name}"),
            }]
        }
        "rekognition" => {
            let mut out = vec![Permission {
                action: format!("rekognition:{operation}"),
                resource: "*".to_owned(),
            }];
            // Rekognition reads an S3 object with the caller's rights.
            if let Some(name) = json["Image"]["S3Object"]["Name"].as_str() {
                out.push(Permission {
                    action: "s3:GetObject".to_owned(),
                    resource: format!("bucket/{name}"),
                });
            }
            out
        }
        other => vec![Permission {
            action: format!("{other}:{operation}"),
            resource: "?".to_owned(),
        }],
    }
}

/// The interceptor: refuses a request the role does not allow, as AWS would. `roles` is one
/// function's, or, for a process that does the work of several (`pawql serve --backend aws`
/// scans in process), theirs together.
#[derive(Debug, Clone, Copy)]
pub struct EnforceIam {
    roles: &'static [Function],
}

impl Intercept for EnforceIam {
    fn name(&self) -> &'static str {
        "EnforceIam"
    }

    /// Checked on the request as serialized, before anything later (signing, a test's own
    /// interceptors) touches it, as AWS authorises what the caller asked for.
    fn read_after_serialization(
        &self,
        context: &SerializedContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let metadata = cfg.load::<Metadata>().expect("every SDK operation has metadata");
        let request = context.request();
        let body = request.body().bytes().unwrap_or_default();
        let service = metadata.service().to_lowercase();
        for permission in needs(&service, metadata.name(), request.uri(), body) {
            if !self.roles.iter().any(|&function| allowed(function, &permission)) {
                return Err(format!(
                    "AccessDenied (IAM as deployed): serverless.yml's role of {:?} does not allow {} on {}",
                    self.roles, permission.action, permission.resource
                )
                .into());
            }
        }
        Ok(())
    }
}

/// `clients` with IAM enforced on every call, as the role of `roles` would (see [`EnforceIam`]).
pub fn enforcing(clients: &AwsClients, roles: &'static [Function]) -> AwsClients {
    let enforce = EnforceIam { roles };
    AwsClients {
        s3: aws_sdk_s3::Client::from_conf(clients.s3.config().to_builder().interceptor(enforce).build()),
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            clients.dynamodb.config().to_builder().interceptor(enforce).build(),
        ),
        ssm: aws_sdk_ssm::Client::from_conf(clients.ssm.config().to_builder().interceptor(enforce).build()),
        rekognition: aws_sdk_rekognition::Client::from_conf(
            clients.rekognition.config().to_builder().interceptor(enforce).build(),
        ),
    }
}

#[test]
fn each_role_is_read_as_written() {
    use Function::{Api, Scan, Stream};
    let need = |action: &str, resource: &str| Permission {
        action: action.to_owned(),
        resource: resource.to_owned(),
    };
    for (function, granted) in [
        (Api, need("dynamodb:GetItem", "table/chunkInfoTable")),
        (Api, need("dynamodb:DeleteItem", "table/chunkInfoTable")),
        (Api, need("s3:PutObject", "bucket/0123/cat")),
        (Api, need("s3:ListBucket", "bucket")),
        (Api, need("ssm:GetParametersByPath", "parameter/pawql/t1x2")),
        (Api, need("dynamodb:Query", "table/imageChunksTable")),
        (Stream, need("s3:PutObject", "bucket/0123/cat")),
        (Stream, need("dynamodb:BatchGetItem", "table/scanTable")),
        (Scan, need("rekognition:DetectLabels", "*")),
        (Scan, need("dynamodb:Query", "table/scanTable/index/UnfinishedScans")),
        (Scan, need("s3:PutObject", "bucket/scan-debug/x")),
        (
            Scan,
            need("dynamodb:GetRecords", "table/scanTable/stream/2026-12-02T00:00:00.000"),
        ),
        (Scan, need("sqs:SendMessage", "queue")),
    ] {
        assert!(allowed(function, &granted), "{function:?} {granted:?}");
    }
    // What a real account would refuse: the old sweep's Scan, writes to SSM, listing with
    // object rights only, anything on another table; and each function's work to the others.
    for (function, refused) in [
        (Api, need("dynamodb:Scan", "table/scanTable")),
        (Api, need("ssm:PutParameter", "parameter/pawql/t1x2/apiKeys")),
        (Api, need("s3:ListBucket", "bucket/x")),
        (Api, need("dynamodb:GetItem", "table/someoneElsesTable")),
        (Api, need("dynamodb:DeleteTable", "table/chunkInfoTable")),
        // The index of the layout before write shards is gone, and so is the right to it.
        (
            Api,
            need("dynamodb:Query", "table/imageChunksTable/index/LabelChunkIndex"),
        ),
        (Api, need("rekognition:DetectLabels", "*")),
        (Api, need("dynamodb:Query", "table/scanTable/index/UnfinishedScans")),
        (Api, need("sqs:SendMessage", "queue")),
        (Stream, need("rekognition:DetectLabels", "*")),
        (Stream, need("dynamodb:Query", "table/imageChunksTable")),
        (Scan, need("s3:PutObject", "bucket/0123/cat")),
        (Scan, need("dynamodb:DeleteItem", "table/imageChunksTable")),
        (Scan, need("dynamodb:BatchGetItem", "table/scanTable")),
    ] {
        assert!(!allowed(function, &refused), "{function:?} {refused:?}");
    }
}

#[test]
fn an_s3_request_is_authorised_on_its_whole_key() {
    for uri in [
        "/scan-debug/x.json?x-id=PutObject",
        "http://127.0.0.1:5000/pawql-t-images/scan-debug/x.json?x-id=PutObject",
    ] {
        assert_eq!(
            s3("PutObject", uri),
            [Permission {
                action: "s3:PutObject".into(),
                resource: "bucket/scan-debug/x.json".into()
            }],
            "{uri}"
        );
    }
    assert_eq!(s3("ListObjectsV2", "/?list-type=2")[0].resource, "bucket");
}

#[tokio::test]
async fn a_call_the_role_does_not_allow_fails_as_on_aws() {
    let moto = crate::moto::MotoServer::shared().await;
    let plain = moto.clients().await;
    let stage = crate::moto::unique_stage();
    pawql::adapters::aws::provision(&plain, &stage).await.unwrap();
    let clients = enforcing(&plain, &[Function::Api]);
    let scan_table = pawql::adapters::aws::resources::scan_table().name(&stage);
    let denied = clients
        .dynamodb
        .scan()
        .table_name(&scan_table)
        .send()
        .await
        .unwrap_err();
    let text = format!("{:?}", aws_sdk_dynamodb::error::DisplayErrorContext(&denied));
    assert!(
        text.contains("does not allow dynamodb:Scan on table/scanTable"),
        "{text}"
    );
    clients
        .dynamodb
        .get_item()
        .table_name(&scan_table)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
        .send()
        .await
        .expect("GetItem is granted");
}
