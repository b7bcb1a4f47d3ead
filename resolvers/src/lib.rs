//! pawql's core: the GraphQL schema, the domain logic and the port traits.
//!
//! This crate has no AWS dependency. The root package plugs adapters (embedded or AWS)
//! into the ports and serves the schema built by [`build_schema`] over HTTP or Lambda.

pub mod catalog;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod label_check;
pub mod metrics;
pub mod ports;
pub mod scanning;
pub mod schema;

pub use catalog::{Catalog, CatalogSettings};
pub use error::{ApiError, ApiResult};
pub use schema::{build_schema, export_sdl, Deps, PawqlSchema};
