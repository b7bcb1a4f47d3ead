//! `Mutation.requestUpload` and `Mutation.completeUpload`: the presigned upload flow for
//! files too large to send through the API (Lambda's 6 MB request limit).

use async_graphql::{Context, Object, Result, ResultExt, ID};

use crate::catalog::Catalog;
use crate::schema::types::{Image, UploadTicket};
use tracing::instrument;

#[derive(Default)]
pub struct RequestUploadMutation;

#[Object]
impl RequestUploadMutation {
    /// Starts an upload that bypasses the API's request size: returns a URL to PUT the file
    /// to and a ticket for `completeUpload`. `byteSize` is the file's exact length in bytes
    /// (at most `maxBytes`): on S3 the URL is signed for that length and refuses any other.
    #[graphql(guard = "crate::schema::Writer")]
    #[instrument(skip_all, fields(%label, byte_size))]
    async fn request_upload(&self, ctx: &Context<'_>, label: String, byte_size: i64) -> Result<UploadTicket> {
        let catalog = ctx.data_unchecked::<Catalog>();
        Ok(catalog.request_upload(&label, byte_size).await.extend()?.into())
    }

    /// Files the image PUT for `ticket`, after the same checks as `upload`. A refused file
    /// is removed; after `INTERNAL_SERVER_ERROR` the call can be retried with the same ticket.
    /// `weight` defaults to 0.5 (also when null).
    #[graphql(guard = "crate::schema::Writer")]
    #[instrument(skip_all, fields(ticket = ticket.as_str()))]
    async fn complete_upload(
        &self,
        ctx: &Context<'_>,
        ticket: ID,
        #[graphql(default = 0.5)] weight: Option<f64>,
    ) -> Result<Image> {
        let catalog = ctx.data_unchecked::<Catalog>();
        Ok(catalog.complete_upload(&ticket, weight).await.extend()?.into())
    }
}
