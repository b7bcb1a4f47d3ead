//! The label check (`PAWQL_VERIFY_CATS`): images uploaded under the checked label (`cat`)
//! enter the random pool only once a scan of their bytes confirms a cat.
//!
//! Two moments, one home: at upload the catalogue asks for the scan the image waits for
//! ([`LabelCheck::request_at_upload`]), and when a scan is final the scanner settles the image
//! ([`LabelCheck::settle`]): let in on a cat, held with the reason otherwise ([`Hold`]).

use std::sync::Arc;

use chrono::Utc;

use crate::domain::failure::ScanFailure;
use crate::domain::hold::Hold;
use crate::domain::image::{ImageId, ImageRecord};
use crate::domain::label::Label;
use crate::domain::scan::{ScanRecord, ScanSource, ScanStatus};
use crate::error::ApiResult;
use crate::ports::{record_scan_request, ChunkTables, ScanDispatch, ScanStore};
use tracing::instrument;

/// The label check of one label, over the ports it reads and writes.
#[derive(Clone)]
pub struct LabelCheck {
    label: Label,
    tables: Arc<dyn ChunkTables>,
    scans: Arc<dyn ScanStore>,
    dispatch: Arc<dyn ScanDispatch>,
}

impl LabelCheck {
    pub fn new(
        label: Label,
        tables: Arc<dyn ChunkTables>,
        scans: Arc<dyn ScanStore>,
        dispatch: Arc<dyn ScanDispatch>,
    ) -> LabelCheck {
        LabelCheck {
            label,
            tables,
            scans,
            dispatch,
        }
    }

    /// The checked label.
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// At upload: requests the scan a fresh image waits for (deduplicated: a retried upload
    /// asks again harmlessly), and settles the image at once if a scan of its bytes is final.
    #[instrument(level = "debug", skip_all, fields(image = %image.id))]
    pub async fn request_at_upload(&self, image: &ImageRecord) -> ApiResult<()> {
        let source = ScanSource::Image { id: image.id.clone() };
        let pending = ScanRecord::pending(image.id.sha256.clone(), source, false, Utc::now());
        let scan = record_scan_request(self.scans.as_ref(), self.dispatch.as_ref(), pending, false).await?;
        if scan.status.is_final() {
            self.settle(&scan).await?;
        }
        Ok(())
    }

    /// What a scan means for the image: `Some(None)` let in, `Some(Some(hold))` held, `None`
    /// not final yet (nothing to do).
    fn verdict(scan: &ScanRecord) -> Option<Option<Hold>> {
        match (scan.status, &scan.verdict) {
            (ScanStatus::Succeeded, Some(verdict)) if verdict.is_cat => Some(None),
            (ScanStatus::Succeeded, Some(verdict)) => Some(Some(Hold::not_a_cat(verdict.cat_confidence))),
            (ScanStatus::Failed, _) => {
                Some(Some(Hold::ScanFailed(scan.error.clone().unwrap_or_else(|| {
                    ScanFailure::Unrecognised("the scan failed".to_owned())
                }))))
            }
            _ => None,
        }
    }

    /// After a final scan: the checked label's image of these bytes, if there is one, is let
    /// into the random pool when the scan found a cat, and held out (with the reason) when it
    /// did not or failed.
    #[instrument(level = "debug", skip_all, fields(scan = %scan.id))]
    pub async fn settle(&self, scan: &ScanRecord) -> anyhow::Result<()> {
        let Some(hold) = Self::verdict(scan) else {
            return Ok(());
        };
        let id = ImageId::new(self.label.clone(), scan.id.clone());
        match self.tables.get_image(&id).await? {
            Some(image) if image.hold != hold => {
                tracing::info!(image = %id, ?hold, "label check settled");
                self.tables.set_hold(&id, hold).await?;
            }
            _ => {}
        }
        Ok(())
    }
}
