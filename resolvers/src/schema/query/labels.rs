//! `Query.labels`: the configured labels with their image counts and weight sums.

use async_graphql::{Context, Object, Result, ResultExt};

use crate::catalog::Catalog;
use crate::schema::types::LabelStats;
use tracing::instrument;

#[derive(Default)]
pub struct LabelsQuery;

#[Object]
impl LabelsQuery {
    /// Every configured label, in configuration order, with its totals.
    #[instrument(level = "debug", skip_all)]
    async fn labels(&self, ctx: &Context<'_>) -> Result<Vec<LabelStats>> {
        let catalog = ctx.data_unchecked::<Catalog>();
        let totals = catalog.label_totals().await.extend()?;
        Ok(totals.into_iter().map(LabelStats::from).collect())
    }
}
