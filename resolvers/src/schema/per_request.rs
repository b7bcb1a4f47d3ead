//! What a request carries beside its operation, given by [`prepare_request`] (or
//! [`prepare_batch`]): the one function every door calls before it runs a request
//! (`POST`/`GET /graphql`, the Server-Sent Events stream, the WebSocket through
//! [`PreparingSchema`], the Lambda entries through the same router, and any door added
//! later). It puts on the request who calls, what its answer may weigh, and its own
//! DataLoaders ([`super::loaders`]), fresh for this request, so a request's batches never mix
//! with another's. The request then runs only through [`Prepared`], which starts each batch
//! when the request has nothing else to run.

use std::sync::Arc;

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::{BatchRequest, BatchResponse, Data, Executor, Request, Response};

use super::loaders::RequestLoaders;
use super::{Caller, PawqlSchema, ResponseBudget};

/// What a door knows of one request before it runs it. Absent fields are absent on the
/// request too: no caller is an in-process caller (open), no budget no payload limit.
#[derive(Debug, Clone, Default)]
pub struct PerRequest {
    /// Who calls, as the door decided from its credentials. `None` where the caller is
    /// already in the connection's data (a WebSocket's `connection_init`).
    pub caller: Option<Caller>,
    /// What the answer may still carry, where the door has a payload limit.
    pub response_budget: Option<ResponseBudget>,
}

/// A request (or batch) with its per-request data, ready to run on the schema from
/// [`super::build_schema`].
pub struct Prepared<R> {
    request: R,
    loaders: RequestLoaders,
}

/// Gives `request` its per-request data. Run it with [`Prepared::execute`] or
/// [`Prepared::execute_stream`].
pub fn prepare_request(request: Request, per_request: PerRequest) -> Prepared<Request> {
    let PerRequest {
        caller,
        response_budget,
    } = per_request;
    let loaders = RequestLoaders::default();
    let mut request = request.data(loaders.clone());
    if let Some(caller) = caller {
        request = request.data(caller);
    }
    if let Some(budget) = response_budget {
        request = request.data(budget);
    }
    Prepared { request, loaders }
}

/// [`prepare_request`] for a batch (a JSON array of operations in one HTTP request). Its
/// operations share the data, loaders included: they run together and leave in one
/// response, so their per-parent reads are batched together, as one request's are.
pub fn prepare_batch(batch: BatchRequest, per_request: PerRequest) -> Prepared<BatchRequest> {
    let PerRequest {
        caller,
        response_budget,
    } = per_request;
    let loaders = RequestLoaders::default();
    let mut batch = batch.data(loaders.clone());
    if let Some(caller) = caller {
        batch = batch.data(caller);
    }
    if let Some(budget) = response_budget {
        batch = batch.data(budget);
    }
    Prepared {
        request: batch,
        loaders,
    }
}

impl<R> Prepared<R> {
    /// The request itself, for what a door does to it beside its data (its parsed document).
    pub fn request_mut(&mut self) -> &mut R {
        &mut self.request
    }
}

impl Prepared<Request> {
    /// Runs the request.
    pub async fn execute(self, schema: &PawqlSchema) -> Response {
        self.loaders.gate().run(schema.execute(self.request)).await
    }

    /// Runs the request as a stream of responses (a subscription's, or a query's one),
    /// with the connection's `session_data` where it has some (a WebSocket's).
    pub fn execute_stream(self, schema: &PawqlSchema, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let responses = Executor::execute_stream(schema, self.request, session_data);
        Box::pin(self.loaders.gate().run(responses))
    }
}

impl Prepared<BatchRequest> {
    /// Runs the batch.
    pub async fn execute(self, schema: &PawqlSchema) -> BatchResponse {
        self.loaders.gate().run(schema.execute_batch(self.request)).await
    }
}

/// The schema as an [`Executor`] that prepares every operation it runs, for doors that hand
/// the schema to a library which executes operations itself (async-graphql's WebSocket
/// protocol: one connection, many operations, each its own request). The caller stays in
/// the connection's data.
#[derive(Clone)]
pub struct PreparingSchema(pub PawqlSchema);

impl Executor for PreparingSchema {
    async fn execute(&self, request: Request) -> Response {
        prepare_request(request, PerRequest::default()).execute(&self.0).await
    }

    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        prepare_request(request, PerRequest::default()).execute_stream(&self.0, session_data)
    }
}
