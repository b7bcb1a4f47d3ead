//! `Mutation.upload`: add an image (GraphQL multipart request spec).

use async_graphql::{Context, Object, Result, ResultExt, Upload};
use bytes::Bytes;

use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::schema::types::Image;
use tracing::instrument;

#[derive(Default)]
pub struct UploadMutation;

#[Object]
impl UploadMutation {
    /// Uploads an image under `label`. The bytes decide the format (JPEG, PNG or WebP),
    /// whatever the file name or Content-Type say. Uploading the same bytes under the same
    /// label again returns the existing image. `weight` defaults to 0.5 (also when null).
    #[graphql(guard = "crate::schema::Writer")]
    #[instrument(skip_all, fields(%label))]
    async fn upload(
        &self,
        ctx: &Context<'_>,
        label: String,
        image: Upload,
        #[graphql(default = 0.5)] weight: Option<f64>,
    ) -> Result<Image> {
        let value = image
            .value(ctx)
            .map_err(|e| ApiError::BadUserInput(format!("the image part is missing or unreadable: {e}")))
            .extend()?;
        let bytes: Bytes = value.content;
        let catalog = ctx.data_unchecked::<Catalog>();
        Ok(catalog.upload(&label, weight, bytes).await.extend()?.into())
    }
}
