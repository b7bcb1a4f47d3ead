//! The presigned-upload flow: `requestUpload` hands out a ticket and a URL to PUT the file
//! to, `completeUpload` takes the staged file through the same path as a direct upload.

use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::{instrument, warn};

use super::upload::UPLOAD_NEEDS;
use super::Catalog;
use crate::deadline;
use crate::domain::image::ImageRecord;
use crate::domain::ticket::UploadTicket;
use crate::domain::weight::Weight;
use crate::error::{ApiError, ApiResult};
use crate::ports::Staged;

/// How long a presigned upload URL stays valid.
pub const UPLOAD_TICKET_TTL: Duration = Duration::from_secs(15 * 60);

/// A started presigned upload.
#[derive(Debug, Clone)]
pub struct UploadGrant {
    pub ticket: UploadTicket,
    pub upload_url: String,
    pub expires_at: DateTime<Utc>,
    pub max_bytes: usize,
}

impl Catalog {
    /// Starts a presigned upload: a ticket and the URL to PUT the file to.
    /// `byte_size` is the file's exact length: the URL takes that many bytes and no other
    /// number, and no more than the upload limit is granted.
    #[instrument(skip(self))]
    pub async fn request_upload(&self, label: &str, byte_size: i64) -> ApiResult<UploadGrant> {
        let label = self.settings.labels.parse(label)?;
        let max_bytes = self.settings.limits.max_bytes;
        let byte_size = u64::try_from(byte_size)
            .ok()
            .filter(|&size| size > 0)
            .ok_or_else(|| ApiError::BadUserInput(format!("byteSize must be positive, got {byte_size}")))?;
        if byte_size > max_bytes as u64 {
            return Err(ApiError::PayloadTooLarge(format!(
                "byteSize {byte_size} is over the upload limit of {max_bytes} bytes"
            )));
        }
        let ticket = UploadTicket::new(label);
        // Taken before signing: the store's clock reads later, so the signature lasts at
        // least until the `expiresAt` the client is told. On S3 the URL also needs the
        // signing role's session to last that long (docs/aws-rules.md, S2).
        let expires_at = Utc::now() + UPLOAD_TICKET_TTL;
        let upload_url = self.staged.presign(&ticket, byte_size, UPLOAD_TICKET_TTL).await?;
        Ok(UploadGrant {
            ticket,
            upload_url,
            expires_at,
            max_bytes: self.settings.limits.max_bytes,
        })
    }

    /// Finishes a presigned upload: the staged file goes through exactly the validation of a
    /// direct upload. The staged file is removed once the answer is final (filed, or refused
    /// for the client's fault); after an internal error it stays, so the call can be retried.
    #[instrument(skip(self))]
    pub async fn complete_upload(&self, ticket: &str, weight: Option<f64>) -> ApiResult<ImageRecord> {
        deadline::ensure_time_for(UPLOAD_NEEDS, "completing an upload")?;
        let ticket = UploadTicket::parse(ticket, &self.settings.labels)?;
        // Checked before the staged file is touched, so a typo costs nothing.
        weight.map(Weight::from_f64).transpose()?;
        let max_bytes = self.settings.limits.max_bytes;
        let bytes = match self.staged.read(&ticket, max_bytes).await? {
            Staged::Bytes(bytes) => bytes,
            Staged::Missing => {
                return Err(ApiError::NotFound(format!(
                    "nothing was uploaded for ticket {ticket} (not yet PUT, already completed, or expired)"
                )))
            }
            Staged::TooLarge(size) => {
                self.discard_staged(&ticket).await;
                return Err(ApiError::PayloadTooLarge(format!(
                    "the uploaded file has {size} bytes; the limit is {max_bytes}"
                )));
            }
        };
        let result = self.upload(ticket.label.as_str(), weight, bytes).await;
        if !matches!(result, Err(ApiError::Internal(_) | ApiError::MigrationPending(_))) {
            self.discard_staged(&ticket).await;
        }
        result
    }

    async fn discard_staged(&self, ticket: &UploadTicket) {
        if let Err(e) = deadline::cleanup(self.staged.delete(ticket)).await {
            warn!(%ticket, error = format!("{e:#}"), "could not remove a staged upload");
        }
    }
}
