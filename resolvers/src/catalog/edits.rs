//! Changes to a stored image: a new weight, or its deletion (row first, then the bytes).

use std::time::Duration;

use tracing::instrument;

use super::Catalog;
use crate::deadline;
use crate::domain::image::{ImageId, ImageRecord};
use crate::domain::weight::Weight;
use crate::error::{ApiError, ApiResult};

/// The same for a re-weight or a delete (one transaction, and a delete's object).
const WRITE_NEEDS: Duration = Duration::from_secs(2);

impl Catalog {
    /// Changes an image's weight (and its chunk's weight sum, atomically).
    #[instrument(skip(self))]
    pub async fn set_weight(&self, id: &str, weight: f64) -> ApiResult<ImageRecord> {
        let id = ImageId::parse(id, &self.settings.labels)?;
        let weight = Weight::from_f64(weight)?;
        deadline::ensure_time_for(WRITE_NEEDS, "a re-weight")?;
        let changed = self.tables.set_weight(&id, weight).await;
        self.forget_recent(&id.label);
        changed?.ok_or_else(|| ApiError::NotFound(format!("no image with id {id}")))
    }

    /// Deletes an image: the row and its bookkeeping first, then the bytes. `false` when
    /// there was nothing to delete, so a retried delete is harmless.
    #[instrument(skip(self))]
    pub async fn delete(&self, id: &str) -> ApiResult<bool> {
        let id = ImageId::parse(id, &self.settings.labels)?;
        deadline::ensure_time_for(WRITE_NEEDS, "a delete")?;
        let removed = self.tables.remove_image(&id).await;
        self.forget_recent(&id.label);
        let removed = removed?;
        // Row first: a failure after it leaves bytes nothing points at, never a row pointing
        // at missing bytes. The object is removed even when the row was already gone, so
        // retrying a delete that failed half-way (an error the client saw) finishes the job.
        // (Unless another label holds the same bytes: keys are `{sha256}/{label}`, per label.)
        if let Err(e) = deadline::cleanup(self.images.delete(&id)).await {
            return Err(ApiError::Internal(
                e.context(format!("image {id}: row removed, object not; retry the delete")),
            ));
        }
        Ok(removed.is_some())
    }
}
