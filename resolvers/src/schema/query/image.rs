//! `Query.image`: one image by id.

use async_graphql::{Context, Object, Result, ID};

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
        // Through the request's loader, so aliased fields' rows come back together.
        let loaders = ctx
            .data_opt::<crate::schema::loaders::RequestLoaders>()
            .ok_or_else(crate::schema::loaders::unprepared)?;
        let Some(row) = loaders.images(catalog).load_one(id.0).await? else {
            return Ok(None);
        };
        Ok(Some(Image::from(row?)))
    }
}
