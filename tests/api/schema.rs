//! `schema.graphql` is generated from the code; this test keeps the file honest.

use std::path::Path;

#[test]
fn schema_graphql_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let exported = resolvers::export_sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &exported).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == exported,
        "schema.graphql is out of date with the code. If the change is intended, run:\n  UPDATE_SCHEMA=1 cargo test --test api schema\nand commit schema.graphql (clients are generated from it)."
    );
}

#[test]
fn the_schema_keeps_the_contract_names() {
    let sdl = resolvers::export_sdl();
    for name in [
        "randomImage(label: String!): Image",
        "randomImages(label: String!, count: Int! = 10): [Image!]!",
        "image(id: ID!): Image",
        "labels: [LabelStats!]!",
        "upload(label: String!, image: Upload!, weight: Float = 0.5): Image!",
        "setWeight(id: ID!, weight: Float!): Image!",
        "deleteImage(id: ID!): Boolean!",
    ] {
        assert!(sdl.contains(name), "schema lost `{name}`:\n{sdl}");
    }
}

/// `schema.appsync.graphql`, the schema AppSync loads, is generated from the code too
/// (`resolvers::schema::appsync_sdl`); `UPDATE_SCHEMA=1` rewrites both files.
#[test]
fn schema_appsync_graphql_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.appsync.graphql");
    let exported = resolvers::schema::appsync_sdl::export_appsync_sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &exported).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == exported,
        "schema.appsync.graphql is out of date with the code. If the change is intended, run:\n  UPDATE_SCHEMA=1 cargo test --test api schema\nand commit schema.appsync.graphql (the AppSync API is deployed from it)."
    );
}
