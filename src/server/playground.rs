//! The named operations in `playground/`, compiled into the binary so GraphiQL can preload
//! them wherever the server runs (Lambda included). A test checks this list against the folder.

/// (file name, operation text), in the order GraphiQL shows them as tabs.
pub const OPERATIONS: &[(&str, &str)] = &[
    (
        "random_image.graphql",
        include_str!("../../playground/random_image.graphql"),
    ),
    (
        "random_images.graphql",
        include_str!("../../playground/random_images.graphql"),
    ),
    ("labels.graphql", include_str!("../../playground/labels.graphql")),
    ("image.graphql", include_str!("../../playground/image.graphql")),
    ("upload.graphql", include_str!("../../playground/upload.graphql")),
    (
        "set_weight.graphql",
        include_str!("../../playground/set_weight.graphql"),
    ),
    (
        "request_scan.graphql",
        include_str!("../../playground/request_scan.graphql"),
    ),
    (
        "scan_of_image.graphql",
        include_str!("../../playground/scan_of_image.graphql"),
    ),
    (
        "scan_updated.graphql",
        include_str!("../../playground/scan_updated.graphql"),
    ),
    (
        "scan_result.graphql",
        include_str!("../../playground/scan_result.graphql"),
    ),
    (
        "scan_results.graphql",
        include_str!("../../playground/scan_results.graphql"),
    ),
    (
        "scans_updated.graphql",
        include_str!("../../playground/scans_updated.graphql"),
    ),
    ("scan_file.graphql", include_str!("../../playground/scan_file.graphql")),
    (
        "request_upload.graphql",
        include_str!("../../playground/request_upload.graphql"),
    ),
    (
        "complete_upload.graphql",
        include_str!("../../playground/complete_upload.graphql"),
    ),
    (
        "delete_image.graphql",
        include_str!("../../playground/delete_image.graphql"),
    ),
];
