//! The one HTTP router. The local server hands it to `axum::serve`; the Lambda entry
//! hands the same router to `lambda_http` (only `main` differs).
//!
//! Routes: `POST /graphql` (JSON and multipart), `GET /graphql` (GraphiQL), `/graphql/ws`
//! (subscriptions over WebSocket, graphql-transport-ws),
//! `GET /healthz`, `GET /images/{id}` (image bytes for `Image.url` on the embedded backend),
//! `PUT /uploads/{ticket}` (presigned uploads, embedded backend only), and petAPI's REST
//! routes `POST /upload` and `GET /random?label=`.

mod graphiql;
mod graphql;
mod images;
pub mod playground;
mod responses;
mod rest;
mod uploads;

use axum::extract::DefaultBodyLimit;
use std::sync::Arc;

use async_graphql_axum::GraphQLSubscription;
use axum::routing::{get, post, put};
use axum::Router;
use resolvers::{Catalog, PawqlSchema};
use tower_http::trace::TraceLayer;

use crate::adapters::embedded::FileImageStore;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub schema: PawqlSchema,
    pub catalog: Catalog,
    /// Where `PUT /uploads/{ticket}` stages files: the embedded backend's store. `None` on
    /// AWS, where clients PUT straight to S3.
    pub staging: Option<Arc<FileImageStore>>,
    /// The admin key (`x-pawql-admin-key`) that unlocks debug data; `None`: nobody is admin.
    pub admin_key: Option<String>,
}

impl AppState {
    pub fn new(schema: PawqlSchema, catalog: Catalog, staging: Option<Arc<FileImageStore>>) -> AppState {
        AppState {
            schema,
            catalog,
            staging,
            admin_key: None,
        }
    }

    /// Whether the request presented the admin key (compared in constant time).
    pub fn is_admin(&self, headers: &axum::http::HeaderMap) -> bool {
        let (Some(key), Some(given)) = (self.admin_key.as_deref(), headers.get(ADMIN_KEY_HEADER)) else {
            return false;
        };
        let given = given.as_bytes();
        key.len() == given.len() && key.bytes().zip(given).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }

    /// Largest request body accepted (one upload plus its multipart envelope).
    pub fn max_body_bytes(&self) -> usize {
        self.catalog.settings().limits.max_bytes + MULTIPART_ENVELOPE_BYTES
    }
}

/// The header carrying the admin key.
pub const ADMIN_KEY_HEADER: &str = "x-pawql-admin-key";

/// Room for the `operations` and `map` parts and the part headers around one upload.
const MULTIPART_ENVELOPE_BYTES: usize = 64 * 1024;

/// The router of every door (local server, Lambda).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphiql::page).post(graphql::execute))
        .route_service("/graphql/ws", GraphQLSubscription::new(state.schema.clone()))
        .route("/healthz", get(healthz))
        .route("/images/{id}", get(images::bytes))
        .route(
            "/upload",
            post(rest::upload).layer(DefaultBodyLimit::max(state.max_body_bytes())),
        )
        .route("/random", get(rest::random))
        .route("/uploads/{ticket}", put(uploads::put))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}
