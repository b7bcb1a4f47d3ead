//! `Mutation`: one resolver struct per root field, merged.

mod delete_image;
mod request_scan;
mod request_upload;
mod set_weight;
mod upload;

use async_graphql::MergedObject;

/// The root mutation type.
#[derive(MergedObject, Default)]
pub struct Mutation(
    upload::UploadMutation,
    request_upload::RequestUploadMutation,
    request_scan::RequestScanMutation,
    set_weight::SetWeightMutation,
    delete_image::DeleteImageMutation,
);
