//! `Mutation.setWeight`: change how often an image is served.

use async_graphql::{Context, Object, Result, ResultExt, ID};

use crate::catalog::Catalog;
use crate::schema::types::Image;
use tracing::instrument;

#[derive(Default)]
pub struct SetWeightMutation;

#[Object]
impl SetWeightMutation {
    /// Sets an image's weight (0 < weight <= 1). NOT_FOUND when there is no such image.
    #[graphql(guard = "crate::schema::Writer")]
    #[instrument(skip_all, fields(id = id.as_str(), weight))]
    async fn set_weight(&self, ctx: &Context<'_>, id: ID, weight: f64) -> Result<Image> {
        let catalog = ctx.data_unchecked::<Catalog>();
        Ok(catalog.set_weight(&id, weight).await.extend()?.into())
    }
}
