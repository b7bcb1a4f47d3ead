//! Wiring: configuration in, a ready router out. Backends are chosen here and nowhere else.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use resolvers::ports::{ChunkTables, ImageStore};
use resolvers::{build_schema, CatalogSettings, Deps};

use crate::adapters::embedded;
use crate::server::{router, AppState};

/// Builds the router over any pair of ports (embedded, AWS, or a test's instrumented store).
pub fn router_over(images: Arc<dyn ImageStore>, tables: Arc<dyn ChunkTables>, settings: CatalogSettings) -> Router {
    let deps = Deps::new(images, tables, settings);
    let catalog = deps.catalog.clone();
    router(AppState::new(build_schema(deps), catalog))
}

/// Builds the router over the embedded backend in `data_dir`; image URLs start with `public_url`.
pub fn embedded_router(data_dir: &Path, public_url: &str, settings: CatalogSettings) -> anyhow::Result<Router> {
    let (images, tables) = embedded::open(data_dir, public_url, settings.labels.clone())?;
    Ok(router_over(images, tables, settings))
}
