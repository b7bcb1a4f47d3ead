//! The GraphQL schema: root types merged from one resolver per root field
//! (AppSync style, `Type.field`), and the single constructor every entry point uses.

mod mutation;
mod query;
pub mod types;

use std::sync::Arc;

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};

use crate::catalog::{Catalog, CatalogSettings};
use crate::ports::{ChunkTables, ImageStore};

pub use mutation::Mutation;
pub use query::Query;

/// The schema type served by the Lambda, the local server and the tests.
pub type PawqlSchema = Schema<Query, Mutation, EmptySubscription>;

/// Everything the resolvers need, built once at start-up.
pub struct Deps {
    pub catalog: Catalog,
}

impl Deps {
    pub fn new(images: Arc<dyn ImageStore>, tables: Arc<dyn ChunkTables>, settings: CatalogSettings) -> Deps {
        Deps {
            catalog: Catalog::new(images, tables, settings),
        }
    }
}

/// Query depth cap: the deepest legitimate operation is far shallower.
const MAX_QUERY_DEPTH: usize = 12;
/// Query complexity cap: a field costs 1, `base64` 10, and `randomImages` multiplies its
/// selection by `count`. One `randomImages(count: 100)` with `base64` (1,100) fits; a pile of
/// aliased ones, each reading 100 images from storage, does not.
const MAX_QUERY_COMPLEXITY: usize = 2_000;

/// Builds the one schema. Every entry point calls this, so they cannot drift apart.
pub fn build_schema(deps: Deps) -> PawqlSchema {
    schema_builder().data(deps.catalog).finish()
}

fn schema_builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_depth(MAX_QUERY_DEPTH)
        .limit_complexity(MAX_QUERY_COMPLEXITY)
}

/// The SDL of the schema, as committed in `schema.graphql`. Needs no backend.
pub fn export_sdl() -> String {
    schema_builder().finish().sdl()
}
