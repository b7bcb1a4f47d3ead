//! `UploadTicket`: where to PUT a large file, and the ticket to complete the upload with.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use crate::catalog::UploadGrant;

/// A started presigned upload. PUT the file's bytes to `uploadUrl` (method `PUT`, any
/// Content-Type), then call `completeUpload(ticket)` before `expiresAt`.
#[derive(SimpleObject)]
pub struct UploadTicket {
    /// Pass this to `completeUpload`.
    pub ticket: String,
    /// The presigned URL to PUT the file to.
    pub upload_url: String,
    /// When `uploadUrl` stops working.
    pub expires_at: DateTime<Utc>,
    /// The largest file `completeUpload` will accept, in bytes.
    pub max_bytes: u64,
}

impl From<UploadGrant> for UploadTicket {
    fn from(grant: UploadGrant) -> Self {
        UploadTicket {
            ticket: grant.ticket.to_string(),
            upload_url: grant.upload_url,
            expires_at: grant.expires_at,
            max_bytes: grant.max_bytes as u64,
        }
    }
}
