//! `Query.randomImages`: `count` independent weighted draws (with replacement).

use async_graphql::{Context, Object, Result, ResultExt};

use crate::catalog::{Catalog, DEFAULT_RANDOM_COUNT};
use crate::error::ApiError;
use crate::schema::types::Image;
use tracing::instrument;

#[derive(Default)]
pub struct RandomImagesQuery;

#[Object]
impl RandomImagesQuery {
    /// `count` weighted random images of `label` (independent draws, so repeats are possible).
    /// Empty when the label has no images. Costs `count` × the selection in query complexity.
    #[graphql(complexity = "count.max(0) as usize * child_complexity")]
    #[instrument(level = "debug", skip_all, fields(%label, count))]
    async fn random_images(
        &self,
        ctx: &Context<'_>,
        label: String,
        #[graphql(default_with = "DEFAULT_RANDOM_COUNT as i32")] count: i32,
    ) -> Result<Vec<Image>> {
        let count = usize::try_from(count)
            .map_err(|_| ApiError::BadUserInput(format!("count must not be negative, got {count}")))
            .extend()?;
        let catalog = ctx.data_unchecked::<Catalog>();
        let images = catalog.random_images(&label, count).await.extend()?;
        Ok(images.into_iter().map(Image::from).collect())
    }
}
