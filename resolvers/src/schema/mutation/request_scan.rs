//! `Mutation.requestScan`: ask whether an image contains a cat. Returns at once with the scan
//! (`PENDING` when new); the work happens in the background.

use async_graphql::{Context, Object, Result, ResultExt, Upload, ID};

use crate::error::ApiError;
use crate::schema::scanner;
use crate::schema::types::Scan;
use tracing::instrument;

#[derive(Default)]
pub struct RequestScanMutation;

#[Object]
impl RequestScanMutation {
    /// Scans a catalogue image (`imageId`) or bytes sent for scanning only (`image`); exactly
    /// one of the two. The same bytes are scanned once: asking again returns the existing scan,
    /// unless `force` starts a new one (a scan still in progress is returned as it is).
    /// `debug` keeps debug data with the scan (readable with the admin key). Scans of
    /// scan-only uploads expire after 7 days.
    #[graphql(guard = "crate::schema::Writer")]
    #[instrument(skip_all, fields(image_id = image_id.as_ref().map(|id| id.as_str()), forced = force))]
    async fn request_scan(
        &self,
        ctx: &Context<'_>,
        image_id: Option<ID>,
        image: Option<Upload>,
        #[graphql(default = false)] debug: bool,
        #[graphql(default = false)] force: bool,
    ) -> Result<Scan> {
        let scanner = scanner(ctx)?;
        let scan = match (image_id, image) {
            (Some(id), None) => scanner.request_for_image(&id, debug, force).await,
            (None, Some(upload)) => {
                let value = upload
                    .value(ctx)
                    .map_err(|e| ApiError::BadUserInput(format!("the image part is missing or unreadable: {e}")))
                    .extend()?;
                scanner.request_for_upload(value.content, debug, force).await
            }
            _ => Err(ApiError::BadUserInput("give exactly one of imageId and image".into())),
        };
        Ok(Scan(scan.extend()?))
    }
}
