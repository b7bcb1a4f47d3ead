//! GraphQL output types, one file each.

mod image;
mod image_variant;
mod label_stats;
mod scan;
mod upload_ticket;

pub use image::Image;
pub use image_variant::{ImageSize, ImageVariant};
pub use label_stats::LabelStats;
pub use scan::{Scan, ScanStatus};
pub use upload_ticket::UploadTicket;
