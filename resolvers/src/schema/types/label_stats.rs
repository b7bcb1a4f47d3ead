//! `LabelStats`: a label with its image count and weight sum.

use async_graphql::SimpleObject;

use crate::catalog::LabelTotals;
use crate::domain::weight::nanos_to_f64;

/// A configured label and what it holds.
#[derive(SimpleObject)]
pub struct LabelStats {
    pub label: String,
    /// Images filed under the label.
    pub image_count: u64,
    /// Sum of the weights of those images.
    pub total_weight: f64,
}

impl From<LabelTotals> for LabelStats {
    fn from(totals: LabelTotals) -> Self {
        LabelStats {
            label: totals.label.to_string(),
            image_count: totals.image_count,
            total_weight: nanos_to_f64(totals.total_weight),
        }
    }
}
