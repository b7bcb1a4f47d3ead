//! `Mutation.deleteImage`: remove an image, its bookkeeping and its bytes.

use async_graphql::{Context, Object, Result, ResultExt, ID};

use crate::catalog::Catalog;
use tracing::instrument;

#[derive(Default)]
pub struct DeleteImageMutation;

#[Object]
impl DeleteImageMutation {
    /// Deletes an image. True if it existed; false if there was nothing to delete, so a
    /// retried delete is harmless.
    #[graphql(guard = "crate::schema::Writer")]
    #[instrument(skip_all, fields(id = id.as_str()))]
    async fn delete_image(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let catalog = ctx.data_unchecked::<Catalog>();
        catalog.delete(&id).await.extend()
    }
}
