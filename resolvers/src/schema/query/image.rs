//! `Query.image`: one image by id.

use async_graphql::{Context, Object, Result, ResultExt, ID};

use crate::catalog::Catalog;
use crate::schema::types::Image;
use tracing::instrument;

#[derive(Default)]
pub struct ImageQuery;

#[Object]
impl ImageQuery {
    /// The image with this id (`<label>-<sha256>`); null when there is none.
    #[instrument(level = "debug", skip_all, fields(id = id.as_str()))]
    async fn image(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Image>> {
        let catalog = ctx.data_unchecked::<Catalog>();
        Ok(catalog.image(&id).await.extend()?.map(Image::from))
    }
}
