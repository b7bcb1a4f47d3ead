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
pub use resolvers::ports::StagedUploads;
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
    /// The backend's staged uploads, which `PUT /uploads/{ticket}` checks and writes through
    /// where their URLs point here (the embedded backend; on AWS clients PUT straight to S3).
    pub staged: Arc<dyn StagedUploads>,
    /// Keys and read policy, as in force now (keys from SSM are re-read).
    pub access: Arc<LiveAccess>,
    /// Parsed query documents by text (`documents.rs`).
    documents: Arc<documents::DocumentCache>,
    /// The most one response may carry, where the door has a limit (the Lambda: 6 MB).
    pub response_limit: Option<usize>,
    /// The most one request may carry as the door delivers it, where it has a limit (the
    /// Lambda: 6 MB, binary bodies base64-encoded by API Gateway).
    pub request_limit: Option<usize>,
    /// Where clients open `/graphql/stream` when it is not this server (on AWS, the stream
    /// function's URL, ending in `/`); `None`: here.
    pub stream_url: Option<String>,
}

impl AppState {
    pub fn new(schema: PawqlSchema, catalog: Catalog, staged: Arc<dyn StagedUploads>, access: LiveAccess) -> AppState {
        AppState {
            schema,
            catalog,
            staged,
            access: Arc::new(access),
            documents: Arc::default(),
            response_limit: None,
            request_limit: None,
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
        self.max_direct_upload_bytes() + MULTIPART_ENVELOPE_BYTES
    }

    /// The largest file `upload` and `POST /upload` take in the request itself: the upload
    /// limit, or less where the door's request limit is smaller (on the Lambda about 4.4 MB:
    /// API Gateway base64-encodes the body, and Lambda takes 6 MB). Larger files go through
    /// `requestUpload`, whose PUT goes straight to storage.
    pub fn max_direct_upload_bytes(&self) -> usize {
        let max_bytes = self.catalog.settings().limits.max_bytes;
        match self.request_limit {
            Some(limit) => max_bytes.min(direct_upload_limit(limit)),
            None => max_bytes,
        }
    }

    /// The refusal of a direct upload over [`AppState::max_direct_upload_bytes`]: it names
    /// the limit and, where presigned uploads take more, `requestUpload`.
    pub fn direct_upload_too_large(&self) -> resolvers::ApiError {
        let direct = self.max_direct_upload_bytes();
        let max_bytes = self.catalog.settings().limits.max_bytes;
        let message = if direct < max_bytes {
            format!(
                "a file sent in the request is at most {direct} bytes on this deployment; for files up to {max_bytes} bytes use requestUpload, PUT the file to its URL, then completeUpload"
            )
        } else {
            format!("the upload limit is {max_bytes} bytes")
        };
        resolvers::ApiError::PayloadTooLarge(message)
    }
}

/// The largest file a door with request limit `limit` (as the Lambda counts it: the event,
/// with a binary body base64-encoded) can deliver in a multipart upload.
pub fn direct_upload_limit(limit: usize) -> usize {
    (limit.saturating_sub(REQUEST_ENVELOPE_BYTES) / 4 * 3).saturating_sub(MULTIPART_ENVELOPE_BYTES)
}

/// Room in a Lambda event for everything but the body: the request context, headers, the
/// path and query. API Gateway's own headers and context are about 2 KB; browsers add more.
const REQUEST_ENVELOPE_BYTES: usize = 16 * 1024;

/// Which routes a router serves: every door serves its own, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Routes {
    /// Everything (the local server, the API function).
    #[default]
    All,
    /// `POST /graphql/stream` alone (the stream function: its URL is public and outside the
    /// HTTP API's throttle, so it serves nothing the API serves).
    StreamOnly,
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
    /// The most one request may carry (the Lambda's payload limit); `None`: no limit.
    pub request_limit: Option<usize>,
    /// Where clients open `/graphql/stream` when it is elsewhere (`PAWQL_STREAM_URL`).
    pub stream_url: Option<String>,
    /// Which routes this door serves.
    pub routes: Routes,
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
            request_limit: None,
            stream_url: None,
            routes: Routes::All,
        }
    }
}

/// Room for the `operations` and `map` parts and the part headers around one upload.
const MULTIPART_ENVELOPE_BYTES: usize = 64 * 1024;

/// Room left in a capped response for everything but image bytes: JSON, other fields, the
/// Lambda's own envelope and headers. (randomImages(100) with every small field is ~60 KB.)
const RESPONSE_ENVELOPE_BYTES: usize = 256 * 1024;

/// The router of every door (local server, Lambda): `routes` says which routes it serves;
/// CORS headers for `cors_origins` (empty where the door's edge answers CORS itself).
pub fn router(state: AppState, routes: Routes, cors_origins: &[String]) -> Router {
    let router = match routes {
        Routes::All => all_routes(state),
        Routes::StreamOnly => Router::new()
            .route("/graphql/stream", post(stream::execute))
            .fallback(not_here)
            .layer(TraceLayer::new_for_http())
            .with_state(state),
    };
    let router = router.layer(axum::middleware::from_fn(within_invocation_deadline));
    match cors(cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// Every route, for the local server and the API function.
fn all_routes(state: AppState) -> Router {
    Router::new()
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
        .with_state(state)
}

/// Runs a request inside its Lambda invocation's deadline, when it has one (`resolvers::deadline`:
/// every retry loop and AWS call of the request stops a margin before it, so clean-up runs and
/// the answer leaves before Lambda ends the process). The local server's requests have none.
async fn within_invocation_deadline(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let deadline = request
        .extensions()
        .get::<lambda_http::Context>()
        .and_then(|context| instant_of(context.deadline));
    resolvers::deadline::scope(deadline, next.run(request)).await
}

/// A Lambda deadline (milliseconds since the epoch, as the Runtime API hands it out) as an
/// instant on this process's clock; `None` for 0 (no deadline given).
pub fn instant_of(deadline_ms: u64) -> Option<tokio::time::Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(tokio::time::Instant::now() + left)
}

/// A route this door does not serve.
async fn not_here() -> HttpError {
    resolvers::ApiError::NotFound(
        "this URL serves POST /graphql/stream only; everything else is on the API's URL".into(),
    )
    .into()
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
