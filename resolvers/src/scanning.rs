//! The scan service: record scan requests (deduplicated by content) and work on them.
//!
//! `request_*` only records a `PENDING` scan and hands it to the dispatcher, so the mutation
//! returns at once. `run` does the work wherever it happens (the local worker, or the Lambda's
//! stream handler on AWS): claim, load the bytes, detect (retrying transient failures with
//! backoff), and write the final state. A scan never stays `PENDING` or `RUNNING` for good: a
//! failure ends `FAILED` with a reason code, and a crash mid-scan is picked up at start-up.
//!
//! Debug data is collected in a [`ScanTrace`] owned by the one `run` call, so a scan's log
//! lines can only ever be its own, however many scans run at once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use tracing::warn;

use crate::domain::detection::{DetectError, ScanFailure};
use crate::domain::image::{ImageId, ImageKind, Sha256Hex};
use crate::domain::label::{Label, LabelSet};
use crate::domain::scan::{ScanDebug, ScanRecord, ScanSource, ScanStatus, ScanVerdict};
use crate::domain::validation::{validate_image_off_runtime, UploadLimits};
use crate::error::{ApiError, ApiResult};
use crate::label_check::LabelCheck;
use crate::ports::{
    record_scan_request, CatDetector, ChunkTables, ImageStore, NoDispatch, ScanDispatch, ScanInput, ScanStore,
};
use tracing::instrument;

/// How hard `run` tries before a scan fails.
#[derive(Debug, Clone, Copy)]
pub struct ScanSettings {
    /// Detector attempts per scan (transient failures only; others fail at once).
    pub max_attempts: u32,
    /// First pause between attempts; doubles each time.
    pub retry_base: Duration,
    /// Longest a detector call may take before it counts as a (retryable) failure.
    pub detect_timeout: Duration,
    /// Claims of one scan before it is given up: a scan whose worker died (crash, Lambda
    /// timeout, out of memory) is claimed again, but one that kills every worker must not
    /// loop for ever. The claim past this many ends the scan `FAILED` with `GAVE_UP`.
    pub max_claims: u32,
}

impl ScanSettings {
    /// The longest one scan can take: every detector attempt timing out, the pauses between
    /// them, and the store's reads and writes around them. A scan handler starts a scan only
    /// with this much time left before its deadline.
    pub fn longest_run(&self) -> Duration {
        let pauses: Duration = (0..self.max_attempts.saturating_sub(1))
            .map(|i| self.retry_base * 2u32.saturating_pow(i))
            .sum();
        self.detect_timeout * self.max_attempts + pauses + STORE_ALLOWANCE
    }

    /// Settings for a detector whose calls the SDK already bounds (Rekognition on Lambda:
    /// `operation_timeout` 25 s): a detector call cannot outlive the SDK's own limit.
    pub fn for_sdk_detector(sdk_call_limit: Duration) -> ScanSettings {
        ScanSettings {
            detect_timeout: sdk_call_limit,
            ..ScanSettings::default()
        }
    }
}

/// What of a catalogue's settings scanning uses.
#[derive(Debug, Clone)]
pub struct ScanScope {
    /// The labels a scanned image can have.
    pub labels: LabelSet,
    /// What a scan-only upload may be, as a direct upload may.
    pub limits: UploadLimits,
    /// The label whose images are held until a scan finds a cat ([`LabelCheck`]).
    pub label_check: Option<Label>,
}

/// Time allowed for a scan's reads and writes of its record (claim, image row, verdict).
const STORE_ALLOWANCE: Duration = Duration::from_secs(10);

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            max_attempts: 4,
            retry_base: Duration::from_millis(200),
            detect_timeout: Duration::from_secs(60),
            max_claims: 3,
        }
    }
}

/// Everything scanning needs. Built by [`Scanner::new`]; who works on its scans is said by
/// its dispatch ([`Scanner::with_dispatch`]), how hard it tries by [`Scanner::with_settings`].
#[derive(Clone)]
pub struct Scanner {
    scans: Arc<dyn ScanStore>,
    images: Arc<dyn ImageStore>,
    tables: Arc<dyn ChunkTables>,
    detector: Arc<dyn CatDetector>,
    dispatch: Arc<dyn ScanDispatch>,
    labels: LabelSet,
    limits: UploadLimits,
    settings: ScanSettings,
    /// The label check's label (`cat`): its images enter the random pool only once a scan of
    /// their bytes finds a cat ([`LabelCheck`]).
    label_check: Option<Label>,
}

impl Scanner {
    /// A scanner over these ports, for a catalogue of `scope` (its labels, upload limits and
    /// label check: `CatalogSettings::scan_scope`). It dispatches nothing ([`NoDispatch`]) and
    /// uses the default [`ScanSettings`] until told otherwise.
    pub fn new(
        scans: Arc<dyn ScanStore>,
        images: Arc<dyn ImageStore>,
        tables: Arc<dyn ChunkTables>,
        detector: Arc<dyn CatDetector>,
        scope: ScanScope,
    ) -> Scanner {
        Scanner {
            scans,
            images,
            tables,
            detector,
            dispatch: Arc::new(NoDispatch),
            labels: scope.labels,
            limits: scope.limits,
            settings: ScanSettings::default(),
            label_check: scope.label_check,
        }
    }

    /// The same scanner handing new scans to `dispatch` (the local worker's queue).
    pub fn with_dispatch(self, dispatch: Arc<dyn ScanDispatch>) -> Scanner {
        Scanner { dispatch, ..self }
    }

    /// The same scanner with other retries, timeouts and claim cap.
    pub fn with_settings(self, settings: ScanSettings) -> Scanner {
        Scanner { settings, ..self }
    }

    /// Where scans are kept.
    pub fn scans(&self) -> &Arc<dyn ScanStore> {
        &self.scans
    }

    /// Retries, timeouts and the claim cap.
    pub fn settings(&self) -> &ScanSettings {
        &self.settings
    }
}

/// A scan's own log lines and step timings.
#[derive(Default)]
pub struct ScanTrace {
    log: Vec<String>,
    timings: Vec<(String, f64)>,
}

impl ScanTrace {
    fn line(&mut self, scan: &str, text: impl Into<String>) {
        let text = text.into();
        tracing::debug!(scan, "{text}");
        self.log
            .push(format!("{} scan={scan} {text}", Utc::now().format("%H:%M:%S%.3f")));
    }

    async fn timed<T>(&mut self, step: &str, work: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let out = work.await;
        self.timings
            .push((step.to_owned(), started.elapsed().as_secs_f64() * 1e3));
        out
    }
}

impl Scanner {
    /// `requestScan(imageId:)`: a scan of a catalogue image.
    #[instrument(skip_all, fields(image_id = image_id, forced = force))]
    pub async fn request_for_image(&self, image_id: &str, debug: bool, force: bool) -> ApiResult<ScanRecord> {
        let id = ImageId::parse(image_id, &self.labels)?;
        if self.tables.get_image(&id).await?.is_none() {
            return Err(ApiError::NotFound(format!("no image {id}")));
        }
        let source = ScanSource::Image { id: id.clone() };
        self.record(ScanRecord::pending(id.sha256.clone(), source, debug, Utc::now()), force)
            .await
    }

    /// `requestScan(image:)`: a scan of bytes uploaded only for it. They pass the same
    /// validation as an upload, and are stored only if a scan of them is really to be done.
    #[instrument(skip_all, fields(bytes = bytes.len(), forced = force))]
    pub async fn request_for_upload(&self, bytes: Bytes, debug: bool, force: bool) -> ApiResult<ScanRecord> {
        let facts = validate_image_off_runtime(&bytes, self.limits).await?;
        if !force {
            if let Some(existing) = self.scans.get(&facts.sha256).await? {
                return Ok(existing);
            }
        }
        self.images.put_scan_upload(&facts.sha256, facts.kind, bytes).await?;
        let source = ScanSource::Upload {
            content_type: facts.kind.content_type().to_owned(),
        };
        self.record(ScanRecord::pending(facts.sha256, source, debug, Utc::now()), force)
            .await
    }

    async fn record(&self, pending: ScanRecord, force: bool) -> ApiResult<ScanRecord> {
        record_scan_request(self.scans.as_ref(), self.dispatch.as_ref(), pending, force).await
    }

    /// `scanResult(id)`.
    pub async fn scan(&self, id: &str) -> ApiResult<Option<ScanRecord>> {
        let id = Sha256Hex::parse(id)
            .ok_or_else(|| ApiError::BadUserInput(format!("{id:?} is not a scan id (64 hex digits)")))?;
        Ok(self.scans.get(&id).await?)
    }

    /// `scanResults(ids)` and `scansUpdated(ids)`: the scans of many ids in one store read (one
    /// batched read per 100 on DynamoDB), in the order asked; `None` where there is none.
    /// At most `max` ids; a malformed one is the client's error.
    pub async fn scans_by_id(&self, ids: &[impl AsRef<str>], max: usize) -> ApiResult<Vec<Option<ScanRecord>>> {
        if ids.len() > max {
            return Err(ApiError::BadUserInput(format!(
                "at most {max} scan ids at once, got {}",
                ids.len()
            )));
        }
        let parsed = ids
            .iter()
            .map(|id| {
                Sha256Hex::parse(id.as_ref()).ok_or_else(|| {
                    ApiError::BadUserInput(format!("{:?} is not a scan id (64 hex digits)", id.as_ref()))
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        let found = self.scans_of(&parsed.iter().collect::<Vec<_>>()).await?;
        Ok(parsed.iter().map(|id| found.get(id).cloned()).collect())
    }

    /// The latest scans of many images' bytes in one store read (`Image.scan`, through its
    /// request's DataLoader); bytes never scanned are absent from the map.
    pub async fn scans_of(&self, hashes: &[&Sha256Hex]) -> ApiResult<HashMap<Sha256Hex, ScanRecord>> {
        // Draws repeat images; each scan is read once.
        let ids: BTreeSet<&Sha256Hex> = hashes.iter().copied().collect();
        Ok(self.scans.get_many(&ids.into_iter().collect::<Vec<_>>()).await?)
    }

    /// Works on one scan to its end. `reclaim` also takes over a `RUNNING` scan (recovery
    /// after a crash). Errors only when the scan store itself fails; the scan then stays
    /// claimable and recovery retries it.
    #[instrument(skip(self))]
    pub async fn run(&self, id: &Sha256Hex, reclaim: bool) -> anyhow::Result<()> {
        let Some(mut scan) = self.scans.claim(id, reclaim).await? else {
            return Ok(());
        };
        let mut trace = ScanTrace::default();
        let id = id.as_str();
        trace.line(id, format!("claimed (attempt {})", scan.attempts));
        let outcome = if scan.attempts > self.settings.max_claims {
            Err(DetectError::new(
                ScanFailure::GaveUp,
                format!(
                    "claimed {} times without finishing: every worker stopped mid-scan",
                    scan.attempts - 1
                ),
            ))
        } else {
            self.detect(&scan, &mut trace).await
        };
        scan.detector = Some(self.detector.name().to_owned());
        scan.finished_at = Some(Utc::now());
        let raw = match outcome {
            Ok(detection) => {
                trace.line(
                    id,
                    format!("cat: {} (P = {:.4})", detection.is_cat, detection.cat_confidence),
                );
                scan.status = ScanStatus::Succeeded;
                scan.verdict = Some(ScanVerdict {
                    is_cat: detection.is_cat,
                    cat_confidence: detection.cat_confidence,
                    labels: detection.labels,
                });
                scan.error = None;
                Some(detection.raw)
            }
            Err(err) => {
                // In full only in the scan's own log (debug data, admin key) and ours.
                trace.line(id, format!("failed: {err}"));
                tracing::warn!(scan = %id, error = %err, "scan failed");
                scan.status = ScanStatus::Failed;
                scan.error = Some(err.failure);
                None
            }
        };
        // The label check follows the verdict before the scan is final: if this fails, the
        // scan stays RUNNING and is worked on again, check included.
        self.settle(&scan).await?;
        if scan.debug_requested {
            scan.debug = Some(ScanDebug {
                raw,
                timings: trace.timings,
                log: trace.log,
            });
        }
        let settled = scan.clone();
        if !self.scans.finish(scan).await? {
            warn!(scan = id, "scan was no longer running when it finished; result dropped");
            return Ok(());
        }
        let status = match (&settled.status, &settled.error) {
            (ScanStatus::Succeeded, _) => "SUCCEEDED",
            (_, Some(ScanFailure::GaveUp)) => "GAVE_UP",
            _ => "FAILED",
        };
        let finished = settled.finished_at.unwrap_or_else(Utc::now);
        crate::metrics::scan_finished(status, finished - settled.requested_at);
        // Once more after: an image uploaded while this scan ran saw it RUNNING and relies on
        // this run to let it in (or keep it out).
        if let Err(e) = self.settle(&settled).await {
            warn!(
                scan = id,
                error = format!("{e:#}"),
                "label check after the scan failed; uploading the image again settles it"
            );
        }
        Ok(())
    }

    /// The label check over this scanner's ports and dispatch, when the catalogue has one:
    /// what the catalogue asks at upload, and what a finished scan settles.
    pub fn label_check(&self) -> Option<LabelCheck> {
        let label = self.label_check.clone()?;
        Some(LabelCheck::new(
            label,
            self.tables.clone(),
            self.scans.clone(),
            self.dispatch.clone(),
        ))
    }

    /// Settles the label check after a scan ([`LabelCheck::settle`]); nothing without one.
    async fn settle(&self, scan: &ScanRecord) -> anyhow::Result<()> {
        match self.label_check() {
            Some(check) => check.settle(scan).await,
            None => Ok(()),
        }
    }

    /// Loads the bytes and asks the detector, retrying transient failures of either (a
    /// storage hiccup, throttling, a timeout) with doubling pauses.
    async fn detect(
        &self,
        scan: &ScanRecord,
        trace: &mut ScanTrace,
    ) -> Result<crate::domain::detection::Detection, DetectError> {
        let mut pause = self.settings.retry_base;
        let mut input = None;
        for attempt in 1..=self.settings.max_attempts {
            let outcome = match &input {
                Some(input) => self.detect_once(input, trace).await,
                None => match trace.timed("load", self.load(scan)).await {
                    Ok(loaded) => {
                        match &loaded.bytes {
                            Some(bytes) => trace.line(scan.id.as_str(), format!("loaded {} bytes", bytes.len())),
                            None => trace.line(scan.id.as_str(), "the detector reads the image from storage"),
                        }
                        let loaded = input.insert(loaded);
                        self.detect_once(loaded, trace).await
                    }
                    Err(err) => Err(err),
                },
            };
            match outcome {
                Ok(detection) => return Ok(detection),
                Err(err) if err.retryable() && attempt < self.settings.max_attempts => {
                    trace.line(
                        scan.id.as_str(),
                        format!("attempt {attempt} failed ({err}); retrying in {pause:?}"),
                    );
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(err) => return Err(err),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// One detector call, bounded by the detect timeout.
    async fn detect_once(
        &self,
        input: &ScanInput,
        trace: &mut ScanTrace,
    ) -> Result<crate::domain::detection::Detection, DetectError> {
        let limit = self.settings.detect_timeout;
        match trace
            .timed("detect", tokio::time::timeout(limit, self.detector.detect(input)))
            .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(DetectError::new(
                ScanFailure::DetectorTimeout,
                format!("no answer within {limit:?}"),
            )),
        }
    }

    async fn load(&self, scan: &ScanRecord) -> Result<ScanInput, DetectError> {
        let sha256 = scan.id.clone();
        // A storage failure may pass (a network blip): retried like a throttled detector.
        let storage = |e: anyhow::Error| DetectError::new(ScanFailure::StorageFailed, format!("{e:#}"));
        let missing = || DetectError::new(ScanFailure::ImageMissing, "the scanned bytes are gone");
        match &scan.source {
            ScanSource::Image { id } => {
                let id = id.clone();
                let record = self.tables.get_image(&id).await.map_err(storage)?.ok_or_else(missing)?;
                let bytes = if self.detector.reads_from_storage(&record) {
                    None
                } else {
                    Some(self.images.get(&id).await.map_err(storage)?.ok_or_else(missing)?)
                };
                Ok(ScanInput {
                    sha256,
                    kind: record.kind,
                    bytes,
                    image: Some(id),
                })
            }
            ScanSource::Upload { content_type } => {
                let kind = ImageKind::from_content_type(content_type).ok_or_else(missing)?;
                let bytes = self
                    .images
                    .get_scan_upload(&sha256)
                    .await
                    .map_err(storage)?
                    .ok_or_else(missing)?;
                Ok(ScanInput {
                    sha256,
                    kind,
                    bytes: Some(bytes),
                    image: None,
                })
            }
        }
    }
}
