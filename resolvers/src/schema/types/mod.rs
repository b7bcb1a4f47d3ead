//! GraphQL output types, one file each.

mod image;
mod label_stats;

pub use image::Image;
pub use label_stats::LabelStats;
