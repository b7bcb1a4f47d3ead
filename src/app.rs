//! Wiring: configuration in, a ready router out. Backends are chosen here and nowhere else.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use resolvers::ports::{CatDetector, ChunkTables, ImageStore, ScanStore};
use resolvers::scanning::{ScanSettings, Scanner};
use resolvers::{build_schema, CatalogSettings, Deps};

use crate::adapters::aws::{self, AwsBackend, AwsClients, RekognitionDetector};
use crate::adapters::embedded::{self, RedbScanStore};
use crate::server::{router, AppState, LiveAccess, ServerOptions, UploadStaging};
use crate::worker;

/// What scanning runs on: where scans are kept, what detects cats, and who does the work.
pub struct ScanParts {
    pub scans: Arc<dyn ScanStore>,
    pub detector: Arc<dyn CatDetector>,
    pub worker: ScanWorker,
    /// Retries, timeouts and the claim cap (defaults everywhere but in tests).
    pub settings: ScanSettings,
}

/// Who works on the scans `requestScan` records: the one name for it everywhere (the Lambda's
/// `PAWQL_HANDLER=scan-stream` process is the [`ScanWorker::StreamHandler`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanWorker {
    /// A worker inside this process (the local server; started on the current tokio runtime).
    InProcess,
    /// The scan handler, invoked by the scan table's DynamoDB stream (the Lambda deployment):
    /// requests only record the pending scan.
    StreamHandler,
}

/// What a router runs on: the backend's stores, the local staging store behind
/// `PUT /uploads/{ticket}` (embedded backend only) and scanning. Built by [`embedded_ports`] or
/// [`aws_ports`]; tests wrap these same ports (counting, fault injection) before [`router_over`].
pub struct Ports {
    pub images: Arc<dyn ImageStore>,
    pub tables: Arc<dyn ChunkTables>,
    pub staging: Option<Arc<dyn UploadStaging>>,
    pub scanning: Option<ScanParts>,
}

/// Builds the router over `ports`, with fixed access.
pub fn router_over(ports: Ports, settings: CatalogSettings, options: ServerOptions) -> Router {
    let access = LiveAccess::fixed(options.access.clone());
    router_with_access(ports, settings, options, access)
}

/// [`router_over`] with access that may change while the process runs (keys from SSM).
fn router_with_access(ports: Ports, settings: CatalogSettings, options: ServerOptions, access: LiveAccess) -> Router {
    let Ports {
        images,
        tables,
        staging,
        scanning,
    } = ports;
    let mut deps = Deps::new(images.clone(), tables.clone(), settings.clone());
    deps.introspection = options.introspection;
    if let Some(parts) = scanning {
        let scanner = Scanner::new(parts.scans, images, tables, parts.detector, settings.scan_scope())
            .with_settings(parts.settings);
        let scanner = match parts.worker {
            ScanWorker::InProcess => {
                let (dispatch, queue) = worker::channel();
                let scanner = scanner.with_dispatch(dispatch);
                queue.start(scanner.clone());
                scanner
            }
            // The stream is the dispatch: a new scan's item is what invokes the handler.
            ScanWorker::StreamHandler => scanner,
        };
        deps.catalog = deps.catalog.with_label_check(scanner.label_check());
        deps.scanner = Some(scanner);
    }
    let catalog = deps.catalog.clone();
    let mut state = AppState::new(build_schema(deps), catalog, staging, access);
    state.response_limit = options.response_limit;
    state.request_limit = options.request_limit;
    // Resolved against it as a base: it must end in `/` (a Function URL does).
    state.stream_url = options.stream_url.map(|url| format!("{}/", url.trim_end_matches('/')));
    router(state, options.routes, &options.cors_origins)
}

/// The label check waits for scans: without a detector it would hold every cat for ever.
fn ensure_detector_for_label_check(settings: &CatalogSettings, scanning: &Option<ScanParts>) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.label_check.is_none() || scanning.is_some(),
        "PAWQL_VERIFY_CATS / --verify-cats needs a cat detector, and this build has none (feature `offline-detector`)"
    );
    Ok(())
}

/// The offline detector, when the build has it (feature `offline-detector`).
pub fn offline_detector(threshold: f64) -> anyhow::Result<Option<Arc<dyn CatDetector>>> {
    #[cfg(feature = "offline-detector")]
    {
        Ok(Some(Arc::new(crate::detectors::offline::OfflineDetector::load(
            threshold,
        )?)))
    }
    #[cfg(not(feature = "offline-detector"))]
    {
        let _ = threshold;
        tracing::warn!("built without the offline detector: scanning is off");
        Ok(None)
    }
}

/// The embedded backend's ports in `data_dir` (image URLs start with `public_url`): the file
/// store (which also stages direct uploads), the redb tables, and the offline detector with
/// the embedded scan store over the same database, worked on in this process.
pub fn embedded_ports(
    data_dir: &Path,
    public_url: &str,
    settings: &CatalogSettings,
    cat_threshold: f64,
) -> anyhow::Result<Ports> {
    let (images, tables) = embedded::open(data_dir, public_url, settings)?;
    let scanning = match offline_detector(cat_threshold)? {
        Some(detector) => Some(ScanParts {
            scans: Arc::new(RedbScanStore::new(tables.database())?),
            detector,
            worker: ScanWorker::InProcess,
            settings: ScanSettings::default(),
        }),
        None => None,
    };
    Ok(Ports {
        images: images.clone(),
        tables,
        staging: Some(images),
        scanning,
    })
}

/// Builds the router over the embedded backend in `data_dir`; image URLs start with `public_url`.
pub fn embedded_router(
    data_dir: &Path,
    public_url: &str,
    settings: CatalogSettings,
    cat_threshold: f64,
    options: ServerOptions,
) -> anyhow::Result<Router> {
    let ports = embedded_ports(data_dir, public_url, &settings, cat_threshold)?;
    ensure_detector_for_label_check(&settings, &ports.scanning)?;
    options.access.announce();
    Ok(router_over(ports, settings, options))
}

/// How scanning runs on the AWS backend: which detector, and the [`ScanWorker`] it goes with.
#[derive(Debug, Clone, Copy)]
pub enum AwsScanning {
    /// `serve --backend aws`: the offline detector (P(cat) threshold) in the
    /// [`ScanWorker::InProcess`] worker.
    InProcess { cat_threshold: f64 },
    /// The Lambda deployment: Rekognition (minimum confidence in percent), worked on by the
    /// [`ScanWorker::StreamHandler`].
    StreamHandler { min_confidence: f64 },
}

/// Builds the router over a stage's AWS resources, found through SSM (see [`aws::open`]).
/// Scans are kept in the stage's `scanTable`. Keys: those in `options`, plus the stage's
/// SecureString parameters `apiKeys` and `adminKeys` (comma-separated), read at start-up and
/// re-read every `options.key_refresh`.
pub async fn aws_router(
    clients: &AwsClients,
    stage: &str,
    settings: CatalogSettings,
    scanning: AwsScanning,
    options: ServerOptions,
) -> anyhow::Result<Router> {
    let backend = aws::open(clients, stage, &settings).await?;
    tracing::info!(stage, resources = ?backend.resources, "AWS backend");
    let access = match &backend.key_source {
        Some(source) => LiveAccess::refreshed(
            options.access.clone(),
            (backend.api_keys.clone(), backend.admin_keys.clone()),
            source.clone(),
            options.key_refresh,
        ),
        None => LiveAccess::fixed(options.access.with_keys(&backend.api_keys, &backend.admin_keys)),
    };
    let ports = aws_ports(clients, &backend, scanning)?;
    ensure_detector_for_label_check(&settings, &ports.scanning)?;
    access.now().announce();
    Ok(router_with_access(ports, settings, options, access))
}

/// A stage's ports: S3, the chunk tables and `scanTable` of `backend`, and scanning as
/// `scanning` says. Direct uploads go to S3 by presigned URL, so there is no local staging.
pub fn aws_ports(clients: &AwsClients, backend: &AwsBackend, scanning: AwsScanning) -> anyhow::Result<Ports> {
    let scanning = match scanning {
        AwsScanning::InProcess { cat_threshold } => offline_detector(cat_threshold)?.map(|detector| ScanParts {
            scans: backend.scans.clone(),
            detector,
            worker: ScanWorker::InProcess,
            settings: ScanSettings::default(),
        }),
        AwsScanning::StreamHandler { min_confidence } => Some(ScanParts {
            scans: backend.scans.clone(),
            detector: rekognition(clients, backend, min_confidence),
            worker: ScanWorker::StreamHandler,
            settings: ScanSettings::default(),
        }),
    };
    Ok(Ports {
        images: backend.images.clone(),
        tables: backend.tables.clone(),
        staging: None,
        scanning,
    })
}

/// The router of the Lambda functions that serve requests (`api`, buffered; `stream`, whose
/// responses stream, so subscriptions reach clients as events): the AWS backend, Rekognition
/// scans worked on by the scan handler, and writes closed while the stage has no key at all. A Lambda behind API
/// Gateway is on the internet: an operator who has not set keys yet gets a stage that refuses
/// writes with a message naming the parameter, not one that anybody can fill or empty.
async fn lambda_router(
    clients: &AwsClients,
    stage: &str,
    settings: CatalogSettings,
    min_confidence: f64,
    mut options: ServerOptions,
) -> anyhow::Result<Router> {
    let parameter = format!(
        "the SSM SecureString parameter {}{} (comma-separated keys)",
        aws::resources::parameter_path(stage),
        aws::resources::API_KEYS_PARAMETER
    );
    options.access = options.access.closed_without_keys(&parameter);
    options.response_limit = Some(crate::lambda::PAYLOAD_LIMIT);
    options.request_limit = Some(crate::lambda::PAYLOAD_LIMIT);
    // CORS is answered at the edge on AWS (the HTTP API's CorsConfiguration, the Function
    // URL's Cors), which adds its own headers: the router adding them too would send
    // `Access-Control-Allow-Origin` twice, and browsers refuse a response that does.
    if !options.cors_origins.is_empty() {
        tracing::info!(origins = ?options.cors_origins, "CORS is answered by API Gateway and the Function URL, not here");
        options.cors_origins.clear();
    }
    let scanning = AwsScanning::StreamHandler { min_confidence };
    aws_router(clients, stage, settings, scanning, options).await
}

/// The router of the API function (buffered responses): [`lambda_router`], every response
/// held to the Lambda's 6 MB payload.
pub async fn lambda_api_router(
    clients: &AwsClients,
    stage: &str,
    settings: CatalogSettings,
    min_confidence: f64,
    options: ServerOptions,
) -> anyhow::Result<Router> {
    let router = lambda_router(clients, stage, settings, min_confidence, options).await?;
    Ok(crate::lambda::cap_responses(router, crate::lambda::PAYLOAD_LIMIT))
}

/// The router of the stream function (responses streamed): [`lambda_router`] serving
/// `POST /graphql/stream` alone, since its URL is public and outside the HTTP API's throttle.
pub async fn lambda_stream_router(
    clients: &AwsClients,
    stage: &str,
    settings: CatalogSettings,
    min_confidence: f64,
    mut options: ServerOptions,
) -> anyhow::Result<Router> {
    options.routes = crate::server::Routes::StreamOnly;
    lambda_router(clients, stage, settings, min_confidence, options).await
}

/// Rekognition over the stage's bucket.
fn rekognition(clients: &AwsClients, backend: &AwsBackend, min_confidence: f64) -> Arc<dyn CatDetector> {
    Arc::new(RekognitionDetector::new(
        clients.rekognition.clone(),
        clients.s3.clone(),
        &backend.resources.bucket,
        min_confidence,
    ))
}

/// The scanner of the stream-invoked scan handler: Rekognition, and no dispatch (the stream
/// already is the dispatch).
pub async fn aws_stream_scanner(
    clients: &AwsClients,
    stage: &str,
    settings: &CatalogSettings,
    min_confidence: f64,
) -> anyhow::Result<Scanner> {
    let backend = aws::open(clients, stage, settings).await?;
    tracing::info!(stage, resources = ?backend.resources, "scan handler");
    let detector = rekognition(clients, &backend, min_confidence);
    Ok(stream_scanner(backend, settings, detector))
}

/// The scan handler's scanner over a stage's adapters: no dispatch (the stream already is the
/// dispatch), and scan settings bounded by the SDK's call limit. Rekognition calls end at the
/// SDK's operation timeout, so that is a detector call's bound, and with it the longest scan
/// the handler plans its deadline around ([`ScanSettings::longest_run`]).
pub fn stream_scanner(backend: AwsBackend, settings: &CatalogSettings, detector: Arc<dyn CatDetector>) -> Scanner {
    let sdk_call_limit = aws::default_timeouts()
        .operation_timeout()
        .unwrap_or(std::time::Duration::from_secs(25));
    Scanner::new(
        backend.scans,
        backend.images,
        backend.tables,
        detector,
        settings.scan_scope(),
    )
    .with_settings(ScanSettings::for_sdk_detector(sdk_call_limit))
}
