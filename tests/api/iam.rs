//! IAM as a real account would enforce it, on moto (which enforces none): every client the
//! code under test uses, in the test process or in a process the suite starts (`pawql serve
//! --backend aws`, the stream function, `pawql migrate`), signs with an access key id naming
//! the functions whose roles it acts with and its stage ([`acting_as`]:
//! `role:api+scan:<stage>`). moto's server (`scripts/moto_iam.py`, in front of moto in
//! `scripts/moto-server.py`) reads every request's action and resource and refuses, as AWS
//! would with `AccessDeniedException` or S3's `AccessDenied`, whatever serverless.yml's roles
//! of those functions do not allow on that stage's own tables, bucket and parameters. A new
//! call without a grant, or a call on another stage's resources, then fails the test that makes
//! it instead of a deployment. The harness's own set-up and inspection sign as `testing`,
//! which is not checked.
//!
//! The checking layer has its own self-test (the grants read from serverless.yml, the S3 key
//! parsing, other stages refused), run here.

use aws_sdk_dynamodb::config::Credentials;
use pawql::adapters::aws::{AwsClients, Resources};

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
    fn name(self) -> &'static str {
        match self {
            Function::Api => "api",
            Function::Stream => "stream",
            Function::Scan => "scan",
        }
    }
}

/// The access key id a process signs with to act as the role of `roles` on `stage`: moto's
/// server then enforces those roles' grants on that stage's resources (module header).
pub fn acting_as(roles: &[Function], stage: &str) -> String {
    let names: Vec<&str> = roles.iter().map(|function| function.name()).collect();
    format!("role:{}:{stage}", names.join("+"))
}

/// The stage a stage's resources belong to: `pawql-{stage}-chunkInfoTable`.
pub fn stage_of(resources: &Resources) -> String {
    resources
        .chunk_info_table
        .strip_prefix("pawql-")
        .and_then(|rest| rest.strip_suffix("-chunkInfoTable"))
        .expect("a table named by Resources::for_stage")
        .to_owned()
}

/// `clients` signing as the role of `roles` on `stage` (see [`acting_as`]); everything else
/// about them (endpoint, interceptors, timeouts) unchanged.
pub fn enforcing(clients: &AwsClients, roles: &[Function], stage: &str) -> AwsClients {
    let (_, secret) = crate::support::moto::CREDENTIALS;
    let credentials = Credentials::new(acting_as(roles, stage), secret, None, None, "role");
    AwsClients {
        s3: aws_sdk_s3::Client::from_conf(
            clients
                .s3
                .config()
                .to_builder()
                .credentials_provider(credentials.clone())
                .build(),
        ),
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            clients
                .dynamodb
                .config()
                .to_builder()
                .credentials_provider(credentials.clone())
                .build(),
        ),
        ssm: aws_sdk_ssm::Client::from_conf(
            clients
                .ssm
                .config()
                .to_builder()
                .credentials_provider(credentials.clone())
                .build(),
        ),
        rekognition: aws_sdk_rekognition::Client::from_conf(
            clients
                .rekognition
                .config()
                .to_builder()
                .credentials_provider(credentials)
                .build(),
        ),
    }
}

#[test]
fn the_checking_layer_in_front_of_moto_passes_its_self_test() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(std::process::Command::new(root.join("scripts/install-moto"))
        .status()
        .unwrap()
        .success());
    let output = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/moto_iam.py"))
        .arg("--self-test")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_process_acting_as_a_role_is_refused_what_the_role_or_its_stage_does_not_allow() {
    let moto = crate::support::moto::MotoServer::shared().await;
    let plain = moto.clients().await;
    let (mine, theirs) = (
        crate::support::moto::unique_stage(),
        crate::support::moto::unique_stage(),
    );
    pawql::adapters::aws::provision(&plain, &mine).await.unwrap();
    pawql::adapters::aws::provision(&plain, &theirs).await.unwrap();
    let as_role = |roles: &[Function]| {
        let key_id = acting_as(roles, &mine);
        let credentials = aws_sdk_dynamodb::config::Credentials::new(key_id, "testing", None, None, "role");
        let config = plain
            .dynamodb
            .config()
            .to_builder()
            .credentials_provider(credentials)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    };
    let scan_table = |stage: &str| pawql::adapters::aws::resources::scan_table().name(stage);
    let key = aws_sdk_dynamodb::types::AttributeValue::S("x".into());
    let api = as_role(&[Function::Api]);
    api.get_item()
        .table_name(scan_table(&mine))
        .key("id", key.clone())
        .send()
        .await
        .expect("the API role reads its own stage's scans");
    for (client, request, denied) in [
        (&api, "Scan", format!("dynamodb:Scan on table/{}", scan_table(&mine))),
        (
            &api,
            "GetItem",
            format!("dynamodb:GetItem on table/{}", scan_table(&theirs)),
        ),
    ] {
        let sent = if request == "Scan" {
            client
                .scan()
                .table_name(scan_table(&mine))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{:?}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
        } else {
            client
                .get_item()
                .table_name(scan_table(&theirs))
                .key("id", key.clone())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{:?}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
        };
        let text = sent.expect_err("refused as on AWS");
        assert!(text.contains("AccessDeniedException"), "{text}");
        assert!(text.contains(&format!("does not allow {denied}")), "{text}");
    }
}

#[tokio::test]
async fn a_call_the_role_does_not_allow_fails_as_on_aws() {
    let moto = crate::support::moto::MotoServer::shared().await;
    let plain = moto.clients().await;
    let stage = crate::support::moto::unique_stage();
    pawql::adapters::aws::provision(&plain, &stage).await.unwrap();
    let clients = enforcing(&plain, &[Function::Api], &stage);
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
        text.contains(&format!("does not allow dynamodb:Scan on table/{scan_table}")),
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
