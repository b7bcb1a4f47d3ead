//! The GraphQL schema: root types merged from one resolver per root field
//! (AppSync style, `Type.field`), and the single constructor every entry point uses.

pub mod appsync_sdl;
mod limits;
mod loaders;
mod mutation;
mod per_request;
mod query;
mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::{Schema, SchemaBuilder};

use crate::catalog::{Catalog, CatalogSettings};
use crate::ports::{ChunkTables, ImageStore, StagedUploads};
use crate::scanning::Scanner;

pub use mutation::Mutation;
pub use per_request::{prepare_batch, prepare_request, PerRequest, Prepared, PreparingSchema};
pub use query::{Query, MAX_SCAN_RESULTS};
pub use subscription::{Subscription, MAX_WATCHED_SCANS};

/// The schema type served by the Lambda, the local server and the tests.
pub type PawqlSchema = Schema<Query, Mutation, Subscription>;

/// Everything the resolvers need, built once at start-up.
pub struct Deps {
    pub catalog: Catalog,
    /// Scanning, when this build and backend have a detector.
    pub scanner: Option<Scanner>,
    /// Answer introspection queries (`__schema`, `__type`). Production can switch it off.
    pub introspection: bool,
}

impl Deps {
    pub fn new(
        images: Arc<dyn ImageStore>,
        staged: Arc<dyn StagedUploads>,
        tables: Arc<dyn ChunkTables>,
        settings: CatalogSettings,
    ) -> Deps {
        Deps {
            catalog: Catalog::new(images, staged, tables, settings),
            scanner: None,
            introspection: true,
        }
    }
}

/// What a caller's key makes them. Ordered: each role can do what the ones before can.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// No key (or keys are not in use).
    #[default]
    Anonymous,
    /// An API key: writes.
    Client,
    /// An admin key: writes and scan debug data.
    Admin,
}

/// Who is calling, per request: set by the HTTP layer from the `x-api-key` header (or a
/// WebSocket's `connection_init` payload). Absent (a schema executed in-process): open.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// Whether a caller without a key may write.
    pub writes: WritePolicy,
}

/// How many bytes of images (as base64) one response may still carry, where the door that
/// serves it has a payload limit (a Lambda answers at most 6 MB). Shared by every operation
/// of a batch, since they leave in one response. Absent (the local server): no limit.
#[derive(Debug, Clone)]
pub struct ResponseBudget {
    limit: usize,
    used: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ResponseBudget {
    pub fn new(limit: usize) -> ResponseBudget {
        ResponseBudget {
            limit,
            used: Default::default(),
        }
    }

    /// Takes `bytes` from the budget, or refuses (taking nothing) if they do not fit.
    pub fn charge(&self, bytes: usize) -> Result<(), crate::error::ApiError> {
        use std::sync::atomic::Ordering;
        let fits = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok();
        if fits {
            return Ok(());
        }
        Err(crate::error::ApiError::ResponseTooLarge(format!(
            "this response would pass the {} bytes this server can answer with; ask for `url` \
             instead of `base64`, or for fewer images",
            self.limit
        )))
    }
}

/// The length of `bytes` bytes in base64 (with padding).
pub fn base64_len(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(3) * 4).unwrap_or(usize::MAX)
}

/// What a caller needs to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WritePolicy {
    /// No key of either kind is configured and the server allows that (the local default):
    /// anyone who can reach it may write.
    Open,
    /// Keys are configured: writes need an API key or an admin key.
    KeyRequired,
    /// No key is configured and the server refuses to run open (the Lambda): nobody may write
    /// until an operator configures one. The text names where to set it.
    ClosedUntilKeyConfigured(std::sync::Arc<str>),
}

impl Caller {
    pub fn can_write(&self) -> bool {
        self.writes == WritePolicy::Open || self.role >= Role::Client
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Why this caller may not write (for the `UNAUTHENTICATED` message).
    pub fn write_refusal(&self) -> String {
        match &self.writes {
            WritePolicy::ClosedUntilKeyConfigured(where_to_set) => format!(
                "writes are closed: this deployment has no API key configured; an operator must set {where_to_set}"
            ),
            _ => "this mutation needs an API key (header x-api-key)".to_owned(),
        }
    }
}

/// Guards every mutation: an API key (or an admin key) unless writes are open.
pub(crate) struct Writer;

impl async_graphql::Guard for Writer {
    async fn check(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<()> {
        use async_graphql::ErrorExtensions;
        match ctx.data_opt::<Caller>() {
            Some(caller) if !caller.can_write() => {
                Err(crate::error::ApiError::Unauthenticated(caller.write_refusal()).extend())
            }
            _ => Ok(()),
        }
    }
}

/// The scanner, or a clear error where scanning is not available.
pub(crate) fn scanner<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Scanner> {
    use async_graphql::ErrorExtensions;
    ctx.data_opt::<Scanner>().ok_or_else(|| {
        crate::error::ApiError::Internal(anyhow::anyhow!("scanning requested, but this server has no detector"))
            .extend()
    })
}

/// Builds the one schema. Every entry point calls this, so they cannot drift apart.
pub fn build_schema(deps: Deps) -> PawqlSchema {
    let builder = limits::apply(schema_builder(), deps.introspection).data(deps.catalog);
    match deps.scanner {
        Some(scanner) => builder.data(scanner).finish(),
        None => builder.finish(),
    }
}

fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription)
}

/// The SDL of the schema, as committed in `schema.graphql`. Needs no backend.
pub fn export_sdl() -> String {
    schema_builder().finish().sdl()
}
