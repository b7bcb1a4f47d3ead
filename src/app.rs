//! Wiring: configuration in, a ready router out. Backends are chosen here and nowhere else.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use resolvers::ports::{ChunkTables, ImageStore};
use resolvers::{build_schema, CatalogSettings, Deps};

use crate::adapters::aws::{self, AwsClients};
use crate::adapters::embedded::{self, FileImageStore};
use crate::server::{router, AppState};

/// Builds the router over any pair of ports (embedded, AWS, or a test's instrumented store).
/// `staging` is the local store behind `PUT /uploads/{ticket}` (embedded backend only).
pub fn router_over(
    images: Arc<dyn ImageStore>,
    tables: Arc<dyn ChunkTables>,
    settings: CatalogSettings,
    staging: Option<Arc<FileImageStore>>,
) -> Router {
    let deps = Deps::new(images, tables, settings);
    let catalog = deps.catalog.clone();
    router(AppState::new(build_schema(deps), catalog, staging))
}

/// Builds the router over the embedded backend in `data_dir`; image URLs start with `public_url`.
pub fn embedded_router(data_dir: &Path, public_url: &str, settings: CatalogSettings) -> anyhow::Result<Router> {
    let (images, tables) = embedded::open(data_dir, public_url, settings.labels.clone())?;
    Ok(router_over(images.clone(), tables, settings, Some(images)))
}

/// Builds the router over a stage's AWS resources, found through SSM (see [`aws::open`]).
pub async fn aws_router(clients: &AwsClients, stage: &str, settings: CatalogSettings) -> anyhow::Result<Router> {
    let backend = aws::open(clients, stage, settings.labels.clone()).await?;
    tracing::info!(stage, resources = ?backend.resources, "AWS backend");
    Ok(router_over(backend.images, backend.tables, settings, None))
}
