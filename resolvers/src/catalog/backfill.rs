//! Backfill of renditions (`pawql variants`): images stored before variants existed get
//! their sized variants and placeholder.

use anyhow::Context;
use tracing::{instrument, warn};

use super::Catalog;
use crate::domain::image::ImageRecord;
use crate::domain::label::Label;
use crate::domain::validation::decode_image_off_runtime;
use crate::domain::variants::renditions_off_runtime;
use crate::error::ApiResult;

/// What [`Catalog::backfill_renditions`] did to one label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillReport {
    pub made: usize,
    pub already_done: usize,
    /// Ids whose variants could not be made (logged); running again retries them.
    pub failed: Vec<String>,
}

impl Catalog {
    /// Gives every image of `label` stored before variants (no placeholder yet) its variants
    /// and placeholder (`pawql variants`). Idempotent and resumable: an image is done once its
    /// row names its renditions, and redoing one overwrites the same keys. Returns (made,
    /// already done); an image that fails is logged and counted by the caller as left.
    #[instrument(skip(self), fields(%label))]
    pub async fn backfill_renditions(&self, label: &Label) -> ApiResult<BackfillReport> {
        let mut report = BackfillReport::default();
        for row in self.tables.all_images(label).await? {
            if row.placeholder.is_some() {
                report.already_done += 1;
                continue;
            }
            match self.backfill_one(&row).await {
                Ok(()) => report.made += 1,
                Err(e) => {
                    warn!(id = %row.id, error = format!("{e:#}"), "could not make variants; run again");
                    report.failed.push(row.id.to_string());
                }
            }
        }
        Ok(report)
    }

    async fn backfill_one(&self, row: &ImageRecord) -> anyhow::Result<()> {
        let bytes = self
            .images
            .get(&row.id)
            .await?
            .with_context(|| format!("{} has a row but no object", row.id))?;
        // Stored bytes were validated at upload; the limits are the ones in force now.
        let (facts, decoded) = decode_image_off_runtime(&bytes, self.settings.limits)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let renditions = renditions_off_runtime(decoded, facts).await?;
        for variant in &renditions.variants {
            self.images
                .put_variant(&row.id, &variant.facts, variant.bytes.clone())
                .await?;
        }
        let facts = renditions.variants.iter().map(|v| v.facts.clone()).collect();
        self.tables
            .set_renditions(&row.id, facts, renditions.placeholder)
            .await?;
        self.forget_recent(&row.id.label);
        Ok(())
    }
}
