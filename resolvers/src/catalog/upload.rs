//! A direct upload: validate, make the variants, store the objects, then the row; and the
//! clean-up that leaves no object behind when the row could not be written.

use anyhow::Context;
use bytes::Bytes;
use chrono::Utc;
use std::time::Duration;
use tracing::{instrument, warn};

use super::Catalog;
use crate::deadline;
use crate::domain::hold::Hold;
use crate::domain::image::{ImageId, ImageRecord, NewImage};
use crate::domain::validation::decode_image_off_runtime;
use crate::domain::variants::{renditions_off_runtime, Renditions};
use crate::domain::weight::Weight;
use crate::error::{ApiError, ApiResult};

/// The time an upload needs once started (decode, variants, S3 puts, the transaction): less
/// left on the request's deadline and it is refused before anything is written.
pub(super) const UPLOAD_NEEDS: Duration = Duration::from_secs(5);

impl Catalog {
    /// Validates and stores an image. Re-uploading the same bytes under the same label returns
    /// the existing image unchanged (its weight included): uploads are safe to retry.
    #[instrument(skip(self, bytes), fields(bytes = bytes.len()))]
    pub async fn upload(&self, label: &str, weight: Option<f64>, bytes: Bytes) -> ApiResult<ImageRecord> {
        deadline::ensure_time_for(UPLOAD_NEEDS, "an upload")?;
        let label = self.settings.labels.parse(label)?;
        let weight = weight.map(Weight::from_f64).transpose()?.unwrap_or(Weight::DEFAULT);
        let (facts, decoded) = decode_image_off_runtime(&bytes, self.settings.limits).await?;

        let checked = self.settings.label_check.as_ref() == Some(&label);
        let id = ImageId::new(label, facts.sha256.clone());
        if let Some(existing) = self.tables.get_image(&id).await? {
            return self.after_upload(existing, checked).await;
        }
        // Only a new image gets its variants made (a retried upload costs no resizing).
        let renditions = renditions_off_runtime(decoded, facts.clone())
            .await
            .map_err(|e| ApiError::Internal(e.context("making the image's variants")))?;
        if let Err(err) = self.store_with_variants(&id, facts.kind, bytes, &renditions).await {
            // A put that failed may still have stored the object (the answer was lost, or a
            // timeout hit after the store acted): nothing points at it, so it goes, variants
            // and all.
            self.remove_orphan_object(&id).await;
            return Err(ApiError::from(err.context("storing the uploaded image")));
        }
        let new = NewImage {
            id: id.clone(),
            weight,
            facts,
            created_at: Utc::now(),
            hold: checked.then_some(Hold::AwaitingScan),
            variants: renditions.variants.iter().map(|v| v.facts.clone()).collect(),
            placeholder: renditions.placeholder,
        };
        let inserted = self.tables.insert_image(new, self.settings.shards).await;
        self.forget_recent(&id.label);
        match inserted {
            Ok(inserted) => {
                if matches!(inserted, crate::ports::Inserted::New(_)) {
                    crate::metrics::upload();
                }
                self.after_upload(inserted.into_record(), checked).await
            }
            Err(err) => {
                // A row write whose outcome is unknown may yet stand: its object stays (an
                // object without a row is harmless, and a retry of the upload reuses it; a row
                // without its object is not).
                if err.downcast_ref::<crate::error::WriteOutcomeUnknown>().is_some() {
                    warn!(%id, error = format!("{err:#}"), "row write outcome unknown; the object is kept");
                } else {
                    self.remove_orphan_object(&id).await;
                }
                Err(ApiError::from(err.context("recording the uploaded image")))
            }
        }
    }

    /// The original, then each variant: all stored before the row points at them.
    async fn store_with_variants(
        &self,
        id: &ImageId,
        kind: crate::domain::image::ImageKind,
        bytes: Bytes,
        renditions: &Renditions,
    ) -> anyhow::Result<()> {
        self.images.put(id, kind, bytes).await?;
        for variant in &renditions.variants {
            self.images
                .put_variant(id, &variant.facts, variant.bytes.clone())
                .await
                .with_context(|| format!("storing the {} variant", variant.facts.size.as_str()))?;
        }
        Ok(())
    }

    /// Under the label check, an image still awaiting its scan gets it requested (again, on a
    /// retried upload: requests are deduplicated), and is returned as it then stands (a scan
    /// of these bytes may already be final). The image is stored either way: a failure here is
    /// healed by uploading again.
    async fn after_upload(&self, record: ImageRecord, checked: bool) -> ApiResult<ImageRecord> {
        if !checked || record.hold != Some(Hold::AwaitingScan) {
            return Ok(record);
        }
        let check = self.checker.as_ref().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "the label check is on, but this server has no detector"
            ))
        })?;
        check.request_at_upload(&record).await?;
        Ok(self.tables.get_image(&record.id).await?.unwrap_or(record))
    }

    /// After a failed row write: delete the object unless a concurrent upload of the same
    /// bytes did get its row in (then the object is that row's and must stay).
    async fn remove_orphan_object(&self, id: &ImageId) {
        // In the time kept for clean-up: the request's own time may be what ran out.
        match deadline::cleanup(self.tables.get_image(id)).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                if let Err(e) = deadline::cleanup(self.images.delete(id)).await {
                    warn!(%id, error = format!("{e:#}"), "could not remove an orphan image object");
                }
            }
            Err(e) => warn!(%id, error = format!("{e:#}"), "could not check for an orphan image object"),
        }
    }
}
