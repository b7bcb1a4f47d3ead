//! GraphQL output types, one file each.

mod image;
mod label_stats;
mod scan;
mod upload_ticket;

pub use image::Image;
pub use label_stats::LabelStats;
pub use scan::{Scan, ScanStatus};
pub use upload_ticket::UploadTicket;
