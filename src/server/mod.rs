//! The one HTTP router. The local server hands it to `axum::serve`; the Lambda entry
//! hands the same router to `lambda_http` (only `main` differs).
//!
//! Routes: `POST /graphql` (JSON and multipart), `GET /graphql` (GraphiQL), `/graphql/ws`
//! (subscriptions over WebSocket, graphql-transport-ws), `POST /graphql/stream` (any operation,
//! subscriptions included, over Server-Sent Events: the graphql-sse protocol),
//! `GET /healthz`, `GET /images/{id}` (image bytes for `Image.url` on the embedded backend),
//! `PUT /uploads/{ticket}` (presigned uploads, embedded backend only), and petAPI's REST
//! routes `POST /upload` and `GET /random?label=`.

pub mod access;
mod documents;
mod graphiql;
mod graphql;
mod images;
pub mod playground;
mod rate_limit;
mod responses;
mod rest;
mod stream;
mod uploads;
mod viewer;
mod websocket;

pub use access::{Access, KeySource, Keys, LiveAccess, API_KEY_HEADER, DEFAULT_KEY_REFRESH};
pub use rate_limit::{with_rate_limit, RateLimit};
pub use resolvers::ports::UploadStaging;
pub use responses::HttpError;

use axum::extract::DefaultBodyLimit;
use std::sync::Arc;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post, put};
use axum::Router;
use resolvers::{Catalog, PawqlSchema};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub schema: PawqlSchema,
    pub catalog: Catalog,
    /// Where `PUT /uploads/{ticket}` stages files: the embedded backend's store. `None` on
    /// AWS, where clients PUT straight to S3.
    pub staging: Option<Arc<dyn UploadStaging>>,
    /// Keys and read policy, as in force now (keys from SSM are re-read).
    pub access: Arc<LiveAccess>,
    /// Parsed query documents by text (`documents.rs`).
    documents: Arc<documents::DocumentCache>,
    /// The most one response may carry, where the door has a limit (the Lambda: 6 MB).
    pub response_limit: Option<usize>,
    /// Where clients open `/graphql/stream` when it is not this server (on AWS, the stream
    /// function's URL, ending in `/`); `None`: here.
    pub stream_url: Option<String>,
}

impl AppState {
    pub fn new(
        schema: PawqlSchema,
        catalog: Catalog,
        staging: Option<Arc<dyn UploadStaging>>,
        access: LiveAccess,
    ) -> AppState {
        AppState {
            schema,
            catalog,
            staging,
            access: Arc::new(access),
            documents: Arc::default(),
            response_limit: None,
            stream_url: None,
        }
    }

    /// The budget of image bytes (as base64) one GraphQL response may carry: the door's
    /// limit less room for everything else in the response.
    pub fn response_budget(&self) -> Option<resolvers::schema::ResponseBudget> {
        self.response_limit
            .map(|limit| resolvers::schema::ResponseBudget::new(limit.saturating_sub(RESPONSE_ENVELOPE_BYTES)))
    }

    /// Largest request body accepted (one upload plus its multipart envelope).
    pub fn max_body_bytes(&self) -> usize {
        self.catalog.settings().limits.max_bytes + MULTIPART_ENVELOPE_BYTES
    }
}

/// What the HTTP layer is told at start-up besides the ports.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub access: Access,
    /// Answer introspection queries (on by default; production may switch it off).
    pub introspection: bool,
    /// Origins browsers may call the API from (`*` for any); empty: no CORS headers, so only
    /// same-origin pages (GraphiQL) can.
    pub cors_origins: Vec<String>,
    /// How often keys from SSM are re-read (AWS backend): the longest a revoked key works.
    pub key_refresh: std::time::Duration,
    /// The most one response may carry (the Lambda's payload limit); `None`: no limit.
    pub response_limit: Option<usize>,
    /// Where clients open `/graphql/stream` when it is elsewhere (`PAWQL_STREAM_URL`).
    pub stream_url: Option<String>,
}

impl Default for ServerOptions {
    /// Open: no keys, public reads, introspection on, no CORS.
    fn default() -> Self {
        ServerOptions {
            access: Access::open(),
            introspection: true,
            cors_origins: Vec::new(),
            key_refresh: DEFAULT_KEY_REFRESH,
            response_limit: None,
            stream_url: None,
        }
    }
}

/// Room for the `operations` and `map` parts and the part headers around one upload.
const MULTIPART_ENVELOPE_BYTES: usize = 64 * 1024;

/// Room left in a capped response for everything but image bytes: JSON, other fields, the
/// Lambda's own envelope and headers. (randomImages(100) with every small field is ~60 KB.)
const RESPONSE_ENVELOPE_BYTES: usize = 256 * 1024;

/// The router of every door (local server, Lambda).
pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let router = Router::new()
        .route("/", get(viewer::page))
        .route("/graphql", get(graphql::get).post(graphql::execute))
        .route("/graphql/ws", get(websocket::subscribe))
        .route("/graphql/stream", post(stream::execute))
        .route("/graphql/assets/{version}/{file}", get(graphiql::asset))
        .route("/healthz", get(healthz))
        .route("/images/{id}", get(images::bytes))
        .route(
            "/upload",
            post(rest::upload).layer(DefaultBodyLimit::max(state.max_body_bytes())),
        )
        .route("/random", get(rest::random))
        .route("/uploads/{ticket}", put(uploads::put))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    match cors(cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// The CORS layer for the configured origins; `None` when none are.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, HeaderName::from_static(API_KEY_HEADER)])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}
