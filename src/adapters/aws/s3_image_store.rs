//! Image bytes in S3 under `<sha256>/<label>` (a high-cardinality prefix), their sized variants
//! under `variants/<sha256>/<label>/<size>`, with the content type set on each object and the
//! key repeated as metadata. `url` is the CDN's URL where the stage has one (serverless.yml's
//! CloudFront distribution), else a presigned GET signed locally: no request to S3 either way.
//!
//! Presigned uploads are PUT by the client straight to `staging/<label>/<token>`; the bucket's
//! lifecycle rule (serverless.yml) expires what is never completed.

use resolvers::deadline;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use resolvers::domain::image::{ImageId, ImageKind, ImageRecord, Sha256Hex};
use resolvers::domain::ticket::{SignedUpload, UploadTicket};
use resolvers::domain::variants::{ImageSize, VariantFacts};
use resolvers::ports::{ImageStore, Staged, StagedUploads};
use resolvers::{ApiError, ApiResult};
use tracing::instrument;

/// Where bytes uploaded only to be scanned live (expired by lifecycle rule, like scans).
pub const SCAN_UPLOAD_PREFIX: &str = "scan-uploads/";

/// The key of bytes uploaded only to be scanned.
pub fn scan_upload_key(sha256: &Sha256Hex) -> String {
    format!("{SCAN_UPLOAD_PREFIX}{}", sha256.as_str())
}

/// How long a client or the CDN may keep an object: for ever (content-addressed keys).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// How long a presigned image URL stays valid by default.
pub const DEFAULT_URL_TTL: Duration = Duration::from_secs(15 * 60);

/// The S3 implementation of [`ImageStore`] and [`StagedUploads`].
pub struct S3ImageStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    url_ttl: Duration,
    /// The CDN in front of the bucket (`https://d123.cloudfront.net`), when there is one.
    cdn_url: Option<String>,
}

impl S3ImageStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, url_ttl: Duration) -> S3ImageStore {
        S3ImageStore {
            client,
            bucket: bucket.into(),
            url_ttl,
            cdn_url: None,
        }
    }

    /// Image URLs on `cdn` (`https://…`, no trailing slash needed) instead of presigned ones.
    pub fn with_cdn(mut self, cdn: Option<String>) -> S3ImageStore {
        self.cdn_url = cdn
            .map(|url| url.trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty());
        self
    }

    async fn put_object(&self, key: &str, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(kind.content_type())
            // Keys are content-addressed: what is under one never changes, so a phone or the
            // CDN may keep it for good.
            .cache_control(IMMUTABLE)
            .metadata("s3key", key)
            .body(ByteStream::from(bytes))
            .send();
        let what = format!("S3 PutObject {key}");
        deadline::bounded(&what, async { put.await.context(what.clone()) }).await?;
        Ok(())
    }

    /// The object, or `None` for a missing key (with `s3:ListBucket`, S3 says 404, not 403).
    async fn get_object(&self, key: &str) -> anyhow::Result<Option<GetObjectOutput>> {
        let what = format!("S3 GetObject {key}");
        deadline::bounded(&what, async {
            match self.client.get_object().bucket(&self.bucket).key(key).send().await {
                Ok(object) => Ok(Some(object)),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
                Err(err) => Err(err).context(what.clone()),
            }
        })
        .await
    }

    async fn get_bytes(&self, key: &str) -> anyhow::Result<Option<Bytes>> {
        let Some(object) = self.get_object(key).await? else {
            return Ok(None);
        };
        let what = format!("reading S3 object {key}");
        let bytes = deadline::bounded(&what, async { object.body.collect().await.context(what.clone()) }).await?;
        Ok(Some(bytes.into_bytes()))
    }

    /// DeleteObject succeeds for a missing key, which is what the port asks for.
    async fn delete_object(&self, key: &str) -> anyhow::Result<()> {
        let delete = self.client.delete_object().bucket(&self.bucket).key(key).send();
        let what = format!("S3 DeleteObject {key}");
        deadline::bounded(&what, async { delete.await.context(what.clone()) }).await?;
        Ok(())
    }
}

#[async_trait]
impl ImageStore for S3ImageStore {
    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn put(&self, id: &ImageId, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        self.put_object(&id.storage_key(), kind, bytes).await
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn get(&self, id: &ImageId) -> anyhow::Result<Option<Bytes>> {
        self.get_bytes(&id.storage_key()).await
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn delete(&self, id: &ImageId) -> anyhow::Result<()> {
        self.delete_object(&id.storage_key()).await?;
        for size in ImageSize::VARIANTS {
            self.delete_object(&id.variant_key(size)).await?;
        }
        Ok(())
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn put_variant(&self, id: &ImageId, variant: &VariantFacts, bytes: Bytes) -> anyhow::Result<()> {
        self.put_object(&id.variant_key(variant.size), variant.kind, bytes)
            .await
    }

    #[instrument(level = "debug", skip_all, fields(image = %id))]
    async fn get_variant(&self, id: &ImageId, size: ImageSize) -> anyhow::Result<Option<Bytes>> {
        self.get_bytes(&id.variant_key(size)).await
    }

    /// With a CDN in front of the bucket, `https://<cdn>/<key>`: the same URL for the same bytes
    /// and size, which phones and the CDN cache. Without one, a presigned GET (signed locally).
    #[instrument(level = "debug", skip_all)]
    async fn url(&self, image: &ImageRecord, variant: Option<&VariantFacts>) -> anyhow::Result<String> {
        let key = match variant {
            Some(variant) => image.id.variant_key(variant.size),
            None => image.id.storage_key(),
        };
        if let Some(cdn) = &self.cdn_url {
            return Ok(format!("{cdn}/{key}"));
        }
        let presigning = PresigningConfig::expires_in(self.url_ttl).context("presigning config")?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .context("presigning an S3 GET")?;
        Ok(request.uri().to_owned())
    }

    #[instrument(level = "debug", skip_all, fields(%sha256))]
    async fn put_scan_upload(&self, sha256: &Sha256Hex, kind: ImageKind, bytes: Bytes) -> anyhow::Result<()> {
        self.put_object(&scan_upload_key(sha256), kind, bytes).await
    }

    #[instrument(level = "debug", skip_all, fields(%sha256))]
    async fn get_scan_upload(&self, sha256: &Sha256Hex) -> anyhow::Result<Option<Bytes>> {
        self.get_bytes(&scan_upload_key(sha256)).await
    }
}

// On AWS the client PUTs to S3 itself, by the presigned URL: S3 checks its own signature
// (SigV4, the length among the signed headers) and keeps the body, so this server never sees
// that PUT. What the server does here is hand out the URL, then read and remove the object.
#[async_trait]
impl StagedUploads for S3ImageStore {
    /// The length is one of the signed headers (`X-Amz-SignedHeaders=content-length;host`),
    /// so S3 refuses a body of any other size: without it, one URL would take up to 5 GB for
    /// as long as it lives.
    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn presign(&self, ticket: &UploadTicket, byte_size: u64, ttl: Duration) -> anyhow::Result<String> {
        let presigning = PresigningConfig::expires_in(ttl).context("presigning config")?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(ticket.staging_key())
            .content_length(i64::try_from(byte_size).context("byte size")?)
            .presigned(presigning)
            .await
            .context("presigning an S3 PUT")?;
        Ok(request.uri().to_owned())
    }

    /// The URLs are S3's: the local server's `PUT /uploads/{ticket}` takes none of them.
    fn takes_puts_here(&self) -> bool {
        false
    }

    /// Refused, always (FORBIDDEN, as S3 answers an unsigned PUT): this store signs no URL for
    /// this server to check. A SigV4 signature is S3's to check, and accepting a URL unchecked
    /// would let anyone stage a file.
    fn verify(&self, upload: &SignedUpload) -> ApiResult<()> {
        Err(ApiError::Forbidden(format!(
            "this server takes no PUT for ticket {} on this backend: PUT to the uploadUrl requestUpload returned (S3)",
            upload.ticket
        )))
    }

    /// A PutObject to the staging key, as S3's presigned PUT itself makes: the object
    /// `completeUpload` reads either way. Nothing on this backend calls it, since the route
    /// refuses every PUT first ([`StagedUploads::takes_puts_here`]); it is real rather than
    /// a refusal because S3 can do it, so the port means the same on both backends. Without a
    /// content type or cache header: a staged file is not yet known to be an image, and it is
    /// read once and removed.
    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn write(&self, ticket: &UploadTicket, bytes: Bytes) -> anyhow::Result<()> {
        let key = ticket.staging_key();
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(bytes))
            .send();
        let what = format!("S3 PutObject {key}");
        deadline::bounded(&what, async { put.await.context(what.clone()) }).await?;
        Ok(())
    }

    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn read(&self, ticket: &UploadTicket, max_bytes: usize) -> anyhow::Result<Staged> {
        let key = ticket.staging_key();
        let Some(object) = self.get_object(&key).await? else {
            return Ok(Staged::Missing);
        };
        // The length is known from the response headers: an oversized file is never read.
        let declared = object.content_length().unwrap_or(0).max(0) as u64;
        if declared > max_bytes as u64 {
            return Ok(Staged::TooLarge(declared));
        }
        let bytes = object
            .body
            .collect()
            .await
            .with_context(|| format!("reading S3 object {key}"))?
            .into_bytes();
        if bytes.len() > max_bytes {
            return Ok(Staged::TooLarge(bytes.len() as u64));
        }
        Ok(Staged::Bytes(bytes))
    }

    #[instrument(level = "debug", skip_all, fields(%ticket))]
    async fn delete(&self, ticket: &UploadTicket) -> anyhow::Result<()> {
        self.delete_object(&ticket.staging_key()).await
    }
}
