//! The AWS backend: the official SDK clients behind the same ports as the embedded one.
//!
//! - [`S3ImageStore`]: image bytes in S3, presigned GET URLs, presigned PUT uploads.
//! - [`DynamoChunkTables`]: the two chunk tables on DynamoDB, conditional transactions only.
//! - [`DynamoScanStore`]: scan records, conditional transitions, TTL for scan-only uploads.
//! - [`RekognitionDetector`]: the cat detector on AWS (DetectLabels on the S3 object).
//! - [`resources`]: the one definition of a stage's bucket, tables and SSM parameters;
//!   [`provision`] creates it on an emulator; [`open`] finds it through SSM.
//!
//! Endpoints come from the SDK's standard configuration, so `AWS_ENDPOINT_URL` (or
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SSM`) points
//! everything at an emulator.

mod batch_get;
pub mod capacity;
pub mod contention;
mod dynamo_chunk_tables;
mod dynamo_scan_store;
mod items;
pub mod migrate;
mod provision;
mod rekognition_detector;
pub mod resources;
mod s3_image_store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use resolvers::CatalogSettings;

use crate::server::{KeySource, Keys};

pub use dynamo_chunk_tables::DynamoChunkTables;
pub use dynamo_scan_store::{DynamoScanStore, UNFINISHED_SCANS_INDEX};
pub use items::{image_key, ROW_PARTITIONS, ROW_PARTITIONS_ATTRIBUTE};
pub use provision::provision;
pub use rekognition_detector::RekognitionDetector;
pub use resources::Resources;
pub use s3_image_store::{S3ImageStore, DEFAULT_URL_TTL};

/// The service clients, built from one SDK configuration.
#[derive(Clone)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub rekognition: aws_sdk_rekognition::Client,
}

impl AwsClients {
    /// Clients from the standard AWS configuration chain (environment, profile, IMDS/Lambda role).
    pub async fn from_env() -> AwsClients {
        AwsClients::new(&aws_config::load_defaults(BehaviorVersion::latest()).await)
    }

    pub fn new(sdk: &SdkConfig) -> AwsClients {
        AwsClients::with_timeouts(sdk, default_timeouts())
    }

    /// Clients whose every call is bounded by `timeouts` (a hung endpoint cannot hold a
    /// request, or a Lambda, until its own timeout).
    pub fn with_timeouts(sdk: &SdkConfig, timeouts: TimeoutConfig) -> AwsClients {
        let sdk = sdk.to_builder().timeout_config(timeouts).build();
        AwsClients {
            s3: aws_sdk_s3::Client::from_conf(s3_config(&sdk).build()),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            rekognition: aws_sdk_rekognition::Client::new(&sdk),
        }
    }
}

/// Outbound call limits: 3 s to connect, 10 s per attempt, 25 s per call with its retries
/// (inside API Gateway's 29 s). Images are at most 10 MB, well within an attempt at S3 speed.
pub fn default_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(25))
        .build()
}

/// S3 settings: path-style addressing when an endpoint is overridden, because emulators on
/// `127.0.0.1` have no per-bucket DNS names; virtual-hosted style (the AWS default) otherwise.
pub fn s3_config(sdk: &SdkConfig) -> aws_sdk_s3::config::Builder {
    let overridden = sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    aws_sdk_s3::config::Builder::from(sdk).force_path_style(overridden)
}

/// A stage's SSM parameters under `/pawql/{stage}/`, by relative name (SecureStrings decrypted).
/// Read once at start-up (a Lambda cold start; the keys again every minute). SSM allows about
/// 40 `GetParametersByPath` a second per account by default, so a burst of cold starts is
/// throttled: throttling is retried with growing pauses inside the contention budget, beyond
/// the SDK's own three attempts.
pub async fn load_parameters(ssm: &aws_sdk_ssm::Client, stage: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut budget = contention::Budget::start();
    loop {
        let what = format!("SSM GetParametersByPath of {stage}");
        match resolvers::deadline::bounded(&what, load_parameters_once(ssm, stage)).await {
            Err(e) if contention::is_transient(&e) => budget.pause(&format!("SSM parameters of {stage}")).await?,
            done => return done,
        }
    }
}

async fn load_parameters_once(ssm: &aws_sdk_ssm::Client, stage: &str) -> anyhow::Result<HashMap<String, String>> {
    let path = resources::parameter_path(stage);
    let mut out = HashMap::new();
    let mut pages = ssm
        .get_parameters_by_path()
        .path(path.trim_end_matches('/'))
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| contention::classify(e, &format!("SSM GetParametersByPath {path}")))?;
        for parameter in page.parameters() {
            if let (Some(name), Some(value)) = (parameter.name(), parameter.value()) {
                out.insert(name.trim_start_matches(&path).to_owned(), value.to_owned());
            }
        }
    }
    Ok(out)
}

/// The AWS backend of a stage, ready to serve.
pub struct AwsBackend {
    pub images: Arc<S3ImageStore>,
    pub tables: Arc<DynamoChunkTables>,
    pub scans: Arc<DynamoScanStore>,
    pub resources: Resources,
    /// The stage's SecureString parameters `apiKeys` and `adminKeys` (comma-separated), as
    /// read at start-up.
    pub api_keys: Keys,
    pub admin_keys: Keys,
    /// Where to re-read them: `None` when every resource name came from the environment and
    /// SSM is not asked at all (keys then come from `PAWQL_API_KEYS` / `PAWQL_ADMIN_KEYS`).
    pub key_source: Option<Arc<SsmKeys>>,
}

/// The stage's keys in SSM (`/pawql/{stage}/apiKeys`, `/pawql/{stage}/adminKeys`), re-read by
/// [`crate::server::LiveAccess`] so that a revoked key stops working within a minute.
pub struct SsmKeys {
    ssm: aws_sdk_ssm::Client,
    stage: String,
}

impl SsmKeys {
    pub fn new(ssm: aws_sdk_ssm::Client, stage: &str) -> SsmKeys {
        SsmKeys {
            ssm,
            stage: stage.to_owned(),
        }
    }
}

/// (API keys, admin keys) among a stage's parameters.
fn keys_of(parameters: &HashMap<String, String>) -> (Keys, Keys) {
    let keys = |name: &str| parameters.get(name).map(|list| Keys::parse(list)).unwrap_or_default();
    (
        keys(resources::API_KEYS_PARAMETER),
        keys(resources::ADMIN_KEYS_PARAMETER),
    )
}

#[async_trait::async_trait]
impl KeySource for SsmKeys {
    async fn keys(&self) -> anyhow::Result<(Keys, Keys)> {
        Ok(keys_of(&load_parameters(&self.ssm, &self.stage).await?))
    }
}

/// Finds a stage's resources (environment first, then SSM) and builds the adapters.
pub async fn open(clients: &AwsClients, stage: &str, settings: &CatalogSettings) -> anyhow::Result<AwsBackend> {
    let from_env = |name: &str| std::env::var(name).ok();
    let all_from_env = resources::env_vars()
        .into_iter()
        .all(|name| from_env(name).is_some_and(|v| !v.is_empty()));
    // With every name in the environment SSM is not needed, and not asked.
    let parameters = if all_from_env {
        HashMap::new()
    } else {
        load_parameters(&clients.ssm, stage).await?
    };
    let resources = Resources::resolve(stage, &parameters, from_env)?;
    let mut backend = open_resources(clients, resources, settings);
    (backend.api_keys, backend.admin_keys) = keys_of(&parameters);
    if !all_from_env {
        backend.key_source = Some(Arc::new(SsmKeys::new(clients.ssm.clone(), stage)));
    }
    Ok(backend)
}

/// Builds the adapters over known resource names.
pub fn open_resources(clients: &AwsClients, resources: Resources, settings: &CatalogSettings) -> AwsBackend {
    AwsBackend {
        images: Arc::new(
            S3ImageStore::new(clients.s3.clone(), &resources.bucket, DEFAULT_URL_TTL)
                .with_cdn(resources.cdn_url.clone()),
        ),
        tables: Arc::new(DynamoChunkTables::new(
            clients.dynamodb.clone(),
            &resources.chunk_info_table,
            &resources.image_chunks_table,
            settings.labels.clone(),
            settings.shards,
        )),
        scans: Arc::new(DynamoScanStore::new(
            clients.dynamodb.clone(),
            &resources.scan_table,
            clients.s3.clone(),
            &resources.bucket,
        )),
        resources,
        api_keys: Keys::default(),
        admin_keys: Keys::default(),
        key_source: None,
    }
}
