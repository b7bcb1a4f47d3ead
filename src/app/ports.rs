//! What a door runs on: the [`Ports`] made from a backend, the scanning a door asks for, and
//! the scanner over them. [`super::Wiring`] is the one caller.

use std::path::Path;
use std::sync::Arc;

use resolvers::ports::{CatDetector, ChunkTables, ImageStore, ScanStore, StagedUploads};
use resolvers::scanning::{ScanSettings, Scanner};
use resolvers::CatalogSettings;

use crate::adapters::aws::{AwsBackend, AwsClients, RekognitionDetector};
use crate::adapters::embedded::{self, RedbScanStore};
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

/// What a door runs on: the backend's stores (its staged uploads among them) and scanning. [`super::Wiring`] makes them
/// from its [`super::BackendSpec`]; the [`super::Wiring::wrap`] hook may change them before
/// the door is built.
pub struct Ports {
    pub images: Arc<dyn ImageStore>,
    pub tables: Arc<dyn ChunkTables>,
    /// Where presigned uploads wait for `completeUpload` (the same store as `images` on both
    /// backends, behind its own port).
    pub staged: Arc<dyn StagedUploads>,
    pub scanning: Option<ScanParts>,
}

/// Which detector a door's scans use.
#[derive(Debug, Clone, Copy)]
pub(super) enum Detector {
    /// The offline model: a cat at or above this P(cat).
    Offline { threshold: f64 },
    /// Rekognition over the stage's bucket: a cat at or above this label confidence (percent).
    Rekognition { min_confidence: f64 },
}

/// How a door scans: the detector, who works on the scans, and the scanner's settings.
pub(super) struct ScanPlan {
    pub detector: Detector,
    pub worker: ScanWorker,
    pub settings: ScanSettings,
}

impl ScanPlan {
    /// The Lambda API's: Rekognition, worked on by the scan handler.
    pub(super) fn lambda_api(min_confidence: f64) -> ScanPlan {
        ScanPlan {
            detector: Detector::Rekognition { min_confidence },
            worker: ScanWorker::StreamHandler,
            settings: ScanSettings::default(),
        }
    }
}

/// The embedded backend's ports in `data_dir`: the file store (which also stages presigned
/// uploads), the redb tables, and, when `plan` asks for the offline detector and the build has
/// it, the embedded scan store over the same database.
pub(super) fn embedded_ports(
    data_dir: &Path,
    public_url: &str,
    settings: &CatalogSettings,
    plan: Option<ScanPlan>,
) -> anyhow::Result<Ports> {
    let (images, tables) = embedded::open(data_dir, public_url, settings)?;
    let scanning = match plan {
        None => None,
        Some(ScanPlan {
            detector: Detector::Rekognition { .. },
            ..
        }) => anyhow::bail!("Rekognition scans run on the AWS backend only"),
        Some(ScanPlan {
            detector: Detector::Offline { threshold },
            worker,
            settings,
        }) => match offline_detector(threshold)? {
            Some(detector) => Some(ScanParts {
                scans: Arc::new(RedbScanStore::new(tables.database())?),
                detector,
                worker,
                settings,
            }),
            None => None,
        },
    };
    Ok(Ports {
        images: images.clone(),
        tables,
        staged: images,
        scanning,
    })
}

/// A stage's ports: S3, the chunk tables and `scanTable` of `backend`, and scanning as `plan`
/// says. Presigned uploads are staged in the same bucket.
pub(super) fn aws_ports(clients: &AwsClients, backend: &AwsBackend, plan: Option<ScanPlan>) -> anyhow::Result<Ports> {
    let scanning = match plan {
        None => None,
        Some(plan) => {
            let detector = match plan.detector {
                Detector::Offline { threshold } => offline_detector(threshold)?,
                Detector::Rekognition { min_confidence } => Some(rekognition(clients, backend, min_confidence)),
            };
            detector.map(|detector| ScanParts {
                scans: backend.scans.clone(),
                detector,
                worker: plan.worker,
                settings: plan.settings,
            })
        }
    };
    Ok(Ports {
        images: backend.images.clone(),
        tables: backend.tables.clone(),
        staged: backend.images.clone(),
        scanning,
    })
}

/// The offline detector, when the build has it (feature `offline-detector`).
fn offline_detector(threshold: f64) -> anyhow::Result<Option<Arc<dyn CatDetector>>> {
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

/// Rekognition over the stage's bucket.
fn rekognition(clients: &AwsClients, backend: &AwsBackend, min_confidence: f64) -> Arc<dyn CatDetector> {
    Arc::new(RekognitionDetector::new(
        clients.rekognition.clone(),
        clients.s3.clone(),
        &backend.resources.bucket,
        min_confidence,
    ))
}

/// The label check waits for scans: without a detector it would hold every cat for ever.
pub(super) fn ensure_detector_for_label_check(
    settings: &CatalogSettings,
    scanning: &Option<ScanParts>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.label_check.is_none() || scanning.is_some(),
        "PAWQL_VERIFY_CATS / --verify-cats needs a cat detector, and this build has none (feature `offline-detector`)"
    );
    Ok(())
}

/// The scanner over `parts`, with its worker: started here when it is in process; for the
/// stream handler the stream is the dispatch (a new scan's item is what invokes the handler).
pub(super) fn scanner_over(
    parts: ScanParts,
    images: Arc<dyn ImageStore>,
    tables: Arc<dyn ChunkTables>,
    settings: &CatalogSettings,
) -> Scanner {
    let scanner =
        Scanner::new(parts.scans, images, tables, parts.detector, settings.scan_scope()).with_settings(parts.settings);
    match parts.worker {
        ScanWorker::InProcess => {
            let (dispatch, queue) = worker::channel();
            let scanner = scanner.with_dispatch(dispatch);
            queue.start(scanner.clone());
            scanner
        }
        ScanWorker::StreamHandler => scanner,
    }
}
