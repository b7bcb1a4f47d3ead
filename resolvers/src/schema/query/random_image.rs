//! `Query.randomImage`: one image of a label, drawn with probability weight / label total.

use async_graphql::{Context, Object, Result, ResultExt};

use crate::catalog::Catalog;
use crate::schema::types::Image;
use tracing::instrument;

#[derive(Default)]
pub struct RandomImageQuery;

#[Object]
impl RandomImageQuery {
    /// A weighted random image of `label`; null when the label has no images.
    #[instrument(level = "debug", skip_all, fields(%label))]
    async fn random_image(&self, ctx: &Context<'_>, label: String) -> Result<Option<Image>> {
        let catalog = ctx.data_unchecked::<Catalog>();
        Ok(catalog.random_image(&label).await.extend()?.map(Image::from))
    }
}
