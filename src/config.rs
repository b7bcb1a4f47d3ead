//! Configuration, read once: command-line flags with environment variable fallbacks.
//! A malformed setting fails start-up naming the setting.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use resolvers::domain::chunks::{WriteShards, DEFAULT_WRITE_SHARDS};
use resolvers::domain::label::LabelSet;
use resolvers::domain::validation::{UploadLimits, DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_BYTES};
use resolvers::CatalogSettings;

/// Settings of the catalogue shared by every entry point.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// Allowed labels, comma-separated.
    #[arg(long, env = "PAWQL_LABELS", value_delimiter = ',', default_value = "cat,dog")]
    pub labels: Vec<String>,
    /// Largest accepted upload in bytes (PAYLOAD_TOO_LARGE above).
    #[arg(long, env = "PAWQL_MAX_UPLOAD_BYTES", default_value_t = DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: usize,
    /// Largest accepted image in pixels, judged from the header (IMAGE_TOO_LARGE above).
    #[arg(long, env = "PAWQL_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Write shards per label: chunk-info items new images are spread over (more take more
    /// uploads a second; every pick reads them all). On AWS, lowering it needs `pawql migrate`.
    #[arg(long, env = "PAWQL_WRITE_SHARDS", default_value_t = DEFAULT_WRITE_SHARDS)]
    pub write_shards: u32,
    /// Opt-in bounded staleness: picks may use a label's chunk info read up to this many
    /// milliseconds ago (per process), so they read only their slots. 0: exact, always read.
    #[arg(long, env = "PAWQL_CHUNK_INFO_MAX_AGE_MS", default_value_t = 0)]
    pub chunk_info_max_age_ms: u64,
    /// The label check: `cat` uploads enter the random pool only once a scan confirms a cat
    /// (others are kept, held out, with the reason). Needs the label `cat` and a detector.
    #[arg(long, env = "PAWQL_VERIFY_CATS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub verify_cats: bool,
}

impl CatalogArgs {
    pub fn settings(&self) -> anyhow::Result<CatalogSettings> {
        let labels = LabelSet::new(&self.labels).map_err(|e| e.context("setting PAWQL_LABELS / --labels"))?;
        Ok(CatalogSettings {
            limits: UploadLimits {
                max_bytes: self.max_upload_bytes,
                max_pixels: self.max_pixels,
            },
            shards: WriteShards::new(self.write_shards)
                .map_err(|e| e.context("setting PAWQL_WRITE_SHARDS / --write-shards"))?,
            label_check: if self.verify_cats {
                Some(labels.parse("cat").map_err(|_| {
                    anyhow::anyhow!("setting PAWQL_VERIFY_CATS / --verify-cats: the label check needs the label `cat` in PAWQL_LABELS")
                })?)
            } else {
                None
            },
            labels,
            ..CatalogSettings::default()
        })
    }
}

/// Keys, read policy, introspection and CORS: who may do what (see `server/access.rs`).
#[derive(Clone, Args)]
pub struct AccessArgs {
    /// API keys for mutations, comma-separated (several at once, to rotate). None: writes are
    /// open to anyone who can reach the server. On AWS also the SSM SecureString `apiKeys`.
    #[arg(long, env = "PAWQL_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<String>,
    /// Admin keys (writes and scan debug data), comma-separated. On AWS also `adminKeys`.
    #[arg(long, env = "PAWQL_ADMIN_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub admin_keys: Vec<String>,
    /// Serve queries without a key (random images, lookups, scans).
    #[arg(long, env = "PAWQL_PUBLIC_READS", default_value_t = true, action = clap::ArgAction::Set)]
    pub public_reads: bool,
    /// Answer introspection (`__schema`, `__type`): what GraphiQL's docs and autocompletion
    /// and tools that load a schema by URL read. On by default, on AWS too (docs/access.md,
    /// "Introspection"); `false` refuses it with `FORBIDDEN`.
    #[arg(long, env = "PAWQL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// Origins browsers may call from, comma-separated (`*`: any). None: same origin only.
    #[arg(long, env = "PAWQL_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Where clients open `/graphql/stream` (subscriptions over Server-Sent Events) when it is
    /// not this server: on AWS the stream function's URL (serverless.yml sets it). The viewer
    /// is told it.
    #[arg(long, env = "PAWQL_STREAM_URL")]
    pub stream_url: Option<String>,
}

/// Keys are never printed: `Debug` shows how many there are.
impl std::fmt::Debug for AccessArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessArgs")
            .field("api_keys", &crate::server::Keys::new(self.api_keys.clone()))
            .field("admin_keys", &crate::server::Keys::new(self.admin_keys.clone()))
            .field("public_reads", &self.public_reads)
            .field("introspection", &self.introspection)
            .field("cors_origins", &self.cors_origins)
            .field("stream_url", &self.stream_url)
            .finish()
    }
}

impl AccessArgs {
    pub fn options(&self) -> crate::server::ServerOptions {
        crate::server::ServerOptions {
            access: crate::server::Access::new(self.api_keys.clone(), self.admin_keys.clone(), self.public_reads),
            introspection: self.introspection,
            cors_origins: self
                .cors_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            stream_url: self.stream_url.clone().filter(|url| !url.trim().is_empty()),
            ..crate::server::ServerOptions::default()
        }
    }
}

/// Where the catalogue lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Files and a redb database in the data directory; no network, no credentials.
    Embedded,
    /// S3 + DynamoDB, found through the stage's SSM parameters (`AWS_ENDPOINT_URL` for emulators).
    Aws,
}

/// Which AWS stage to use: its resources are described under `/pawql/{stage}/` in SSM.
#[derive(Debug, Clone, Args)]
pub struct StageArgs {
    #[arg(long, env = "PAWQL_STAGE", default_value = crate::adapters::aws::resources::DEFAULT_STAGE)]
    pub stage: String,
}

/// `pawql serve`: the local server.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default: nothing is exposed unless asked.
    #[arg(long, env = "PAWQL_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The storage backend.
    #[arg(long, env = "PAWQL_BACKEND", value_enum, default_value_t = Backend::Embedded)]
    pub backend: Backend,
    #[command(flatten)]
    pub stage: StageArgs,
    /// Where the embedded backend keeps images and tables.
    #[arg(long, env = "PAWQL_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Base URL clients reach this server at (for `Image.url`); defaults to http://<addr>.
    #[arg(long, env = "PAWQL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Offline detector: a cat at or above this P(cat).
    #[arg(long, env = "PAWQL_CAT_THRESHOLD", default_value_t = crate::detectors::DEFAULT_CAT_THRESHOLD)]
    pub cat_threshold: f64,
    #[command(flatten)]
    pub access: AccessArgs,
    /// Requests a second per remote client IP address (0: no limit).
    #[arg(long, env = "PAWQL_RATE_LIMIT", default_value_t = 20.0)]
    pub rate_limit: f64,
    /// Burst of requests a client may make above the rate.
    #[arg(long, env = "PAWQL_RATE_BURST", default_value_t = 40)]
    pub rate_burst: u32,
    /// Limit clients on this machine (loopback) too; by default only remote clients are.
    #[arg(long, env = "PAWQL_RATE_LIMIT_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rate_limit_loopback: bool,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// Which Lambda handler this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Handler {
    /// The GraphQL/REST API (API Gateway HTTP API or Function URL events).
    Api,
    /// The scan handler (DynamoDB stream events of the scan table).
    ScanStream,
    /// The same router as `api`, its responses streamed (a Function URL in `RESPONSE_STREAM`
    /// mode): where `POST /graphql/stream` serves subscriptions over Server-Sent Events.
    Stream,
    /// AWS AppSync's direct Lambda resolver (`Invoke` and `BatchInvoke` events), on the same
    /// schema as `api` (src/appsync/).
    #[value(name = "appsync")]
    AppSync,
}

/// `pawql lambda`: the Lambda runtime loop (the default when `AWS_LAMBDA_RUNTIME_API` is set).
/// Both functions of serverless.yml run the same binary; `PAWQL_HANDLER` tells them apart.
#[derive(Debug, Clone, Args)]
pub struct LambdaArgs {
    #[arg(long, env = "PAWQL_HANDLER", value_enum, default_value_t = Handler::Api)]
    pub handler: Handler,
    #[command(flatten)]
    pub stage: StageArgs,
    /// Rekognition: a cat at or above this label confidence (percent).
    #[arg(long, env = "PAWQL_CAT_MIN_CONFIDENCE", default_value_t = crate::detectors::rekognition::DEFAULT_MIN_CONFIDENCE)]
    pub cat_min_confidence: f64,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub appsync: AppSyncArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// Who writes through the AppSync door (`PAWQL_HANDLER=appsync`), by AppSync's identity of
/// the caller: nobody unless named here. An API key, an unnamed principal or an unknown
/// identity is a reader (docs/appsync.md, "Identity").
#[derive(Debug, Clone, Default, Args)]
pub struct AppSyncArgs {
    /// IAM role or user ARNs (comma-separated) that are admins through AppSync: writes and
    /// scan debug data. A role's ARN covers every session of that role.
    #[arg(long = "appsync-admin-arns", env = "PAWQL_APPSYNC_ADMIN_ARNS", value_delimiter = ',')]
    pub admin_arns: Vec<String>,
    /// IAM role or user ARNs (comma-separated) that may write through AppSync.
    #[arg(
        long = "appsync-writer-arns",
        env = "PAWQL_APPSYNC_WRITER_ARNS",
        value_delimiter = ','
    )]
    pub writer_arns: Vec<String>,
    /// Cognito user-pool groups (comma-separated) whose members are admins through AppSync.
    #[arg(
        long = "appsync-admin-groups",
        env = "PAWQL_APPSYNC_ADMIN_GROUPS",
        value_delimiter = ','
    )]
    pub admin_groups: Vec<String>,
    /// Cognito user-pool groups (comma-separated) whose members may write through AppSync.
    #[arg(
        long = "appsync-writer-groups",
        env = "PAWQL_APPSYNC_WRITER_GROUPS",
        value_delimiter = ','
    )]
    pub writer_groups: Vec<String>,
}

impl AppSyncArgs {
    /// The identity rules, blanks dropped (an empty `PAWQL_APPSYNC_WRITER_ARNS=` names nobody).
    pub fn access(&self) -> crate::appsync::AppSyncAccess {
        let names = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|name| name.trim().to_owned())
                .filter(|name| !name.is_empty())
                .collect()
        };
        crate::appsync::AppSyncAccess {
            admin_arns: names(&self.admin_arns),
            writer_arns: names(&self.writer_arns),
            admin_groups: names(&self.admin_groups),
            writer_groups: names(&self.writer_groups),
        }
    }
}
