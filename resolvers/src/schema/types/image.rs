//! `Image`: an image of the catalogue. `url` and `base64` resolve lazily: a query that
//! selects only `url` never reads the bytes from storage.

use async_graphql::{Context, ErrorExtensions, Object, Result, ResultExt, ID};
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::domain::image::ImageRecord;
use crate::error::ApiError;
use crate::schema::scan_loader::ScanDataLoader;

/// An image and its catalogue facts.
pub struct Image(pub ImageRecord);

impl From<ImageRecord> for Image {
    fn from(record: ImageRecord) -> Self {
        Image(record)
    }
}

#[Object]
impl Image {
    /// `<label>-<sha256>`: the same bytes under the same label always have the same id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn label(&self) -> &str {
        self.0.id.label.as_str()
    }

    /// Relative frequency, 0 < weight <= 1.
    async fn weight(&self) -> f64 {
        self.0.weight.as_f64()
    }

    /// The type the bytes have (not what the uploader claimed).
    async fn content_type(&self) -> &'static str {
        self.0.kind.content_type()
    }

    /// Width as displayed, after EXIF orientation.
    async fn width(&self) -> u32 {
        self.0.width
    }

    /// Height as displayed, after EXIF orientation.
    async fn height(&self) -> u32 {
        self.0.height
    }

    async fn byte_size(&self) -> u64 {
        self.0.byte_size
    }

    /// The scan of these bytes (any label, or a scan-only upload of the same bytes), if any.
    // Batched (schema::scan_loader): the images of one response read their scans together.
    async fn scan(&self, ctx: &Context<'_>) -> Result<Option<super::Scan>> {
        let Some(loader) = ctx.data_opt::<ScanDataLoader>() else {
            return Ok(None);
        };
        let scan = loader
            .load_one(self.0.id.sha256.clone())
            .await
            // Named in full: `error.extend()` would pick async-graphql's `impl for &E: Display`
            // on the `Arc` and drop the error's code.
            .map_err(|error| <ApiError as ErrorExtensions>::extend(&error))?;
        Ok(scan.map(super::Scan))
    }

    /// SHA-256 of the bytes, lowercase hex.
    async fn sha256(&self) -> &str {
        self.0.id.sha256.as_str()
    }

    /// In the random pool. False while the label check holds the image out of it: a `cat`
    /// upload awaiting a scan that confirms a cat, or one whose scan did not (see `heldReason`).
    async fn in_pool(&self) -> bool {
        self.0.hold.is_none()
    }

    /// Why the image is held out of the random pool (`AWAITING_SCAN: …`, `NOT_A_CAT: …`,
    /// `SCAN_FAILED: …`); null while it is in the pool.
    async fn held_reason(&self) -> Option<&str> {
        self.0.hold.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Where to GET the bytes: a presigned S3 URL on AWS, the local server otherwise.
    async fn url(&self, ctx: &Context<'_>) -> Result<String> {
        ctx.data_unchecked::<Catalog>().image_url(&self.0).await.extend()
    }

    /// The bytes, base64-encoded (for petAPI-style clients). Reads storage; prefer `url`.
    /// Weighs 10 in query complexity (a storage read and a large payload).
    #[graphql(complexity = 10)]
    async fn base64(&self, ctx: &Context<'_>) -> Result<String> {
        let bytes = ctx.data_unchecked::<Catalog>().image_bytes(&self.0.id).await.extend()?;
        Ok(base64::engine::general_purpose::STANDARD.encode(&bytes))
    }
}
