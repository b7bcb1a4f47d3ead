//! Reads of images: one by id, its bytes or URL at a size, and the totals of every label.

use bytes::Bytes;
use tracing::warn;

use super::Catalog;
use crate::domain::chunks::LabelChunks;
use crate::domain::image::{ImageId, ImageKind, ImageRecord};
use crate::domain::label::Label;
use crate::domain::variants::ImageSize;
use crate::error::{ApiError, ApiResult};

/// Per-label totals for the `labels` query.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelTotals {
    pub label: Label,
    pub image_count: u64,
    /// Sum of weights in billionths.
    pub total_weight: u64,
}

impl Catalog {
    /// One image by id; `None` when it does not exist.
    pub async fn image(&self, id: &str) -> ApiResult<Option<ImageRecord>> {
        let id = ImageId::parse(id, &self.settings.labels)?;
        Ok(self.tables.get_image(&id).await?)
    }

    /// Image count and weight sum of every configured label.
    pub async fn label_totals(&self) -> ApiResult<Vec<LabelTotals>> {
        let labels: Vec<Label> = self.settings.labels.iter().cloned().collect();
        let infos = self.tables.chunk_infos(&labels).await?;
        Ok(labels
            .into_iter()
            .zip(infos)
            .map(|(label, info)| LabelTotals {
                label,
                image_count: info.as_ref().map_or(0, LabelChunks::image_count),
                total_weight: info.as_ref().map_or(0, LabelChunks::total_weight),
            })
            .collect())
    }

    /// The bytes of an image (what `Image.base64` and the image route serve).
    pub async fn image_bytes(&self, id: &ImageId) -> ApiResult<Bytes> {
        self.images
            .get(id)
            .await?
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("image {id} has a row but no object")))
    }

    /// Where a client can fetch the bytes at `size`: its variant's URL, or the original's
    /// where that size is not stored (never an error for asking a size).
    pub async fn image_url(&self, image: &ImageRecord, size: ImageSize) -> ApiResult<String> {
        let variant = image.variants.iter().find(|v| v.size == size);
        Ok(self.images.url(image, variant).await?)
    }

    /// The bytes at `size` and their type: the variant's, or the original's where that size
    /// is not stored (what `/images/{id}?size=` and `/random?size=` serve).
    pub async fn sized_bytes(&self, image: &ImageRecord, size: ImageSize) -> ApiResult<(Bytes, ImageKind)> {
        if let Some(variant) = image.variants.iter().find(|v| v.size == size) {
            if let Some(bytes) = self.images.get_variant(&image.id, size).await? {
                return Ok((bytes, variant.kind));
            }
            warn!(id = %image.id, size = size.as_str(), "a variant the row names is missing; serving the original");
        }
        Ok((self.image_bytes(&image.id).await?, image.kind))
    }
}
