//! `Image`: an image of the catalogue. `url` and `base64` resolve lazily: a query that
//! selects only `url` never reads the bytes from storage; `scan` goes through the request's
//! DataLoader, so the scans of every image in a response cost one read.

use async_graphql::{Context, Object, Result, ResultExt, ID};
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::domain::image::ImageRecord;

/// An image and its catalogue facts.
pub struct Image {
    record: ImageRecord,
}

impl From<ImageRecord> for Image {
    fn from(record: ImageRecord) -> Self {
        Image { record }
    }
}

#[Object]
impl Image {
    /// `<label>-<sha256>`: the same bytes under the same label always have the same id.
    async fn id(&self) -> ID {
        ID(self.record.id.to_string())
    }

    async fn label(&self) -> &str {
        self.record.id.label.as_str()
    }

    /// Relative frequency, 0 < weight <= 1.
    async fn weight(&self) -> f64 {
        self.record.weight.as_f64()
    }

    /// The type the bytes have (not what the uploader claimed).
    async fn content_type(&self) -> &'static str {
        self.record.kind.content_type()
    }

    /// Width as displayed, after EXIF orientation.
    async fn width(&self) -> u32 {
        self.record.width
    }

    /// Height as displayed, after EXIF orientation.
    async fn height(&self) -> u32 {
        self.record.height
    }

    async fn byte_size(&self) -> u64 {
        self.record.byte_size
    }

    /// The scan of these bytes (any label, or a scan-only upload of the same bytes), if any.
    async fn scan(&self, ctx: &Context<'_>) -> Result<Option<super::Scan>> {
        let Some(scanner) = ctx.data_opt::<crate::scanning::Scanner>() else {
            return Ok(None);
        };
        // Through the request's loader: every image's scan in the request in one read.
        let loaders = ctx
            .data_opt::<crate::schema::loaders::RequestLoaders>()
            .ok_or_else(crate::schema::loaders::unprepared)?;
        let scan = loaders.scans(scanner).load_one(self.record.id.sha256.clone()).await?;
        Ok(scan.map(super::Scan))
    }

    /// SHA-256 of the bytes, lowercase hex.
    async fn sha256(&self) -> &str {
        self.record.id.sha256.as_str()
    }

    /// In the random pool. False while the label check holds the image out of it: a `cat`
    /// upload awaiting a scan that confirms a cat, or one whose scan did not (see `heldReason`).
    async fn in_pool(&self) -> bool {
        self.record.hold.is_none()
    }

    /// Why the image is held out of the random pool (`AWAITING_SCAN: …`, `NOT_A_CAT: …`,
    /// `SCAN_FAILED: …`); null while it is in the pool.
    async fn held_reason(&self) -> Option<String> {
        self.record.hold.as_ref().map(ToString::to_string)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.record.created_at
    }

    /// Where to GET the bytes at `size` (default the original): the local server's URL, or on
    /// AWS the CDN's (the same for the same bytes and size, so phones and the CDN cache it)
    /// or a presigned S3 URL. A size not stored (the original already fits it) gives the
    /// original's URL; asking a size is never an error.
    async fn url(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "super::ImageSize::Original")] size: super::ImageSize,
    ) -> Result<String> {
        ctx.data_unchecked::<Catalog>()
            .image_url(&self.record, size.into())
            .await
            .extend()
    }

    /// Every size, smallest first, ending with the original: its dimensions, type, bytes
    /// and URL (a size the original already fits is the original).
    async fn variants(&self) -> Vec<super::ImageVariant> {
        crate::domain::variants::ImageSize::VARIANTS
            .into_iter()
            .chain([crate::domain::variants::ImageSize::Original])
            .map(|size| super::ImageVariant {
                record: self.record.clone(),
                facts: self.record.variants.iter().find(|v| v.size == size).cloned(),
                size,
            })
            .collect()
    }

    /// A BlurHash of the image (~30 characters) to show, blurred, before its bytes arrive;
    /// null for an image stored before placeholders were made (`pawql variants` fills it in).
    async fn placeholder(&self) -> Option<&str> {
        self.record.placeholder.as_deref()
    }

    /// The bytes, base64-encoded (for petAPI-style clients). Reads storage; prefer `url`.
    /// Weighs 10 in query complexity (a storage read and a large payload).
    #[graphql(complexity = 10)]
    async fn base64(&self, ctx: &Context<'_>) -> Result<String> {
        // Decided from the row, before the bytes are read: a Lambda cannot answer past 6 MB.
        if let Some(budget) = ctx.data_opt::<crate::schema::ResponseBudget>() {
            budget
                .charge(crate::schema::base64_len(self.record.byte_size))
                .extend()?;
        }
        let bytes = ctx
            .data_unchecked::<Catalog>()
            .image_bytes(&self.record.id)
            .await
            .extend()?;
        Ok(base64::engine::general_purpose::STANDARD.encode(&bytes))
    }
}
