//! `Mutation`: one resolver struct per root field, merged.

mod delete_image;
mod set_weight;
mod upload;

use async_graphql::MergedObject;

/// The root mutation type.
#[derive(MergedObject, Default)]
pub struct Mutation(
    upload::UploadMutation,
    set_weight::SetWeightMutation,
    delete_image::DeleteImageMutation,
);
