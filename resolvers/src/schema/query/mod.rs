//! `Query`: one resolver struct per root field, merged.

mod image;
mod labels;
mod random_image;
mod random_images;
mod scan_result;

use async_graphql::MergedObject;

pub use scan_result::MAX_SCAN_RESULTS;

/// The root query type.
#[derive(MergedObject, Default)]
pub struct Query(
    random_image::RandomImageQuery,
    random_images::RandomImagesQuery,
    image::ImageQuery,
    labels::LabelsQuery,
    scan_result::ScanResultQuery,
);
