//! Wiring: configuration in, a ready router out. Backends are chosen here and nowhere else.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use resolvers::ports::{CatDetector, ChunkTables, ImageStore, ScanStore};
use resolvers::scanning::{ScanSettings, Scanner};
use resolvers::{build_schema, CatalogSettings, Deps};

use crate::adapters::aws::{self, AwsClients};
use crate::adapters::embedded::{self, FileImageStore, RedbChunkTables, RedbScanStore};
use crate::server::{router, AppState};
use crate::worker;

/// What scanning runs on: where scans are kept and what detects cats. The local worker works
/// on them (started here, on the current tokio runtime).
pub struct ScanParts {
    pub scans: Arc<dyn ScanStore>,
    pub detector: Arc<dyn CatDetector>,
    /// The key that unlocks scan debug data (`PAWQL_ADMIN_KEY`); none: debug data stays hidden.
    pub admin_key: Option<String>,
}

/// Builds the router over any pair of ports (embedded, AWS, or a test's instrumented store).
/// `staging` is the local store behind `PUT /uploads/{ticket}` (embedded backend only).
pub fn router_over(
    images: Arc<dyn ImageStore>,
    tables: Arc<dyn ChunkTables>,
    settings: CatalogSettings,
    staging: Option<Arc<FileImageStore>>,
    scanning: Option<ScanParts>,
) -> Router {
    let mut deps = Deps::new(images.clone(), tables.clone(), settings.clone());
    let mut admin_key = None;
    if let Some(parts) = scanning {
        admin_key = parts.admin_key.filter(|k| !k.is_empty());
        let (dispatch, queue) = worker::channel();
        let scanner = Scanner {
            scans: parts.scans,
            images,
            tables,
            detector: parts.detector,
            dispatch,
            labels: settings.labels.clone(),
            limits: settings.limits,
            settings: ScanSettings::default(),
        };
        queue.start(scanner.clone());
        deps.scanner = Some(scanner);
    }
    let catalog = deps.catalog.clone();
    let mut state = AppState::new(build_schema(deps), catalog, staging);
    state.admin_key = admin_key;
    router(state)
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

/// The offline detector and the embedded scan store over `tables`' database.
pub fn embedded_scanning(
    tables: &RedbChunkTables,
    threshold: f64,
    admin_key: Option<String>,
) -> anyhow::Result<Option<ScanParts>> {
    let Some(detector) = offline_detector(threshold)? else {
        return Ok(None);
    };
    Ok(Some(ScanParts {
        scans: Arc::new(RedbScanStore::new(tables.database())?),
        detector,
        admin_key,
    }))
}

/// Builds the router over the embedded backend in `data_dir`; image URLs start with `public_url`.
pub fn embedded_router(
    data_dir: &Path,
    public_url: &str,
    settings: CatalogSettings,
    cat_threshold: f64,
    admin_key: Option<String>,
) -> anyhow::Result<Router> {
    let (images, tables) = embedded::open(data_dir, public_url, settings.labels.clone())?;
    let scanning = embedded_scanning(&tables, cat_threshold, admin_key)?;
    Ok(router_over(images.clone(), tables, settings, Some(images), scanning))
}

/// Builds the router over a stage's AWS resources, found through SSM (see [`aws::open`]).
/// Scans are kept in the stage's `scanTable`; with the offline detector in the build (the
/// local `serve --backend aws`) the in-process worker runs them. The Lambda build has no
/// detector yet (Rekognition is wired with the stream handler): scanning is off there.
pub async fn aws_router(
    clients: &AwsClients,
    stage: &str,
    settings: CatalogSettings,
    cat_threshold: f64,
    admin_key: Option<String>,
) -> anyhow::Result<Router> {
    let backend = aws::open(clients, stage, settings.labels.clone()).await?;
    tracing::info!(stage, resources = ?backend.resources, "AWS backend");
    let scanning = offline_detector(cat_threshold)?.map(|detector| ScanParts {
        scans: backend.scans.clone(),
        detector,
        admin_key,
    });
    Ok(router_over(backend.images, backend.tables, settings, None, scanning))
}
