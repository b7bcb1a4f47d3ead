//! The AppSync door (`PAWQL_HANDLER=appsync`): the same binary as AWS AppSync's **direct
//! Lambda resolver**, answering on the same schema and resolvers as `/graphql`.
//!
//! An event is one resolver call (`Invoke`: the answer is the field's value) or a JSON array
//! of them (`BatchInvoke`, where the resolver sets `maxBatchSize`: the answer is an array in
//! the same order, [`answer::batch_item`] each). Every call becomes an operation on the schema
//! ([`operation`]), run with the caller AppSync vouches for ([`identity`]) and the request's
//! own DataLoaders (`resolvers::schema::prepare_request`, as every door runs). The `Image.scan`
//! calls of one batch are one operation, so one batched read. What comes back is read out
//! for AppSync ([`answer`]); docs/appsync.md lists where the two doors differ.

pub mod answer;
pub mod identity;
pub mod operation;
pub mod selection;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use resolvers::schema::{prepare_request, Caller, PerRequest, ResponseBudget, Role};
use resolvers::{ApiError, PawqlSchema};
use serde_json::Value;

pub use answer::ResolverError;
pub use identity::{AppSyncAccess, Identity};

use operation::{Call, Operation};
use types::SchemaTypes;

/// Room in the Lambda's answer for everything but image bytes (JSON around them, the other
/// fields): the `base64` budget is the payload limit less this.
const ANSWER_ENVELOPE_BYTES: usize = 64 * 1024;

/// The AppSync resolver function: the schema, the identity rules, and what one answer may weigh.
#[derive(Clone)]
pub struct AppSyncDoor {
    schema: PawqlSchema,
    types: Arc<SchemaTypes>,
    access: Arc<AppSyncAccess>,
    /// The most one answer may carry (the Lambda's 6 MB payload).
    answer_limit: usize,
}

impl AppSyncDoor {
    /// The door over `schema` (from `build_schema`), its callers mapped by `access`.
    pub fn new(schema: PawqlSchema, access: AppSyncAccess, answer_limit: usize) -> anyhow::Result<AppSyncDoor> {
        Ok(AppSyncDoor {
            types: Arc::new(SchemaTypes::of(&schema.sdl())?),
            schema,
            access: Arc::new(access),
            answer_limit,
        })
    }

    /// Answers one invocation: an event object (the value, or the call's error) or an array of
    /// them (an array of items, never an error as a whole unless it would not fit the payload).
    pub async fn answer(&self, event: Value) -> Result<Value, ResolverError> {
        // One budget for the whole invocation: its answers leave in one payload.
        let budget = ResponseBudget::new(self.answer_limit.saturating_sub(ANSWER_ENVELOPE_BYTES));
        let answer = match event {
            Value::Array(events) => Value::Array(self.batch(events, &budget).await),
            event => self.one(event, &budget).await?,
        };
        let size = serde_json::to_vec(&answer).map_or(usize::MAX, |bytes| bytes.len());
        if size > self.answer_limit {
            return Err(ApiError::ResponseTooLarge(format!(
                "this answer ({size} bytes) would pass the Lambda's {} byte payload limit; ask for less (url instead of base64, fewer images)",
                self.answer_limit
            ))
            .into());
        }
        Ok(answer)
    }

    async fn one(&self, event: Value, budget: &ResponseBudget) -> Result<Value, ResolverError> {
        self.resolve(&operation::call_of(event)?, budget).await
    }

    /// One call on its own.
    async fn resolve(&self, call: &Call, budget: &ResponseBudget) -> Result<Value, ResolverError> {
        tracing::debug!(parent = call.parent, field = call.field, "AppSync call");
        let caller = self.caller_for(call)?;
        let (operation, path) = match call.parent.as_str() {
            "Query" | "Mutation" => operation::root(&self.types, call)?,
            "Subscription" => {
                return Err(ApiError::BadUserInput(
                    "subscriptions are AppSync's own (onScanUpdated); this Lambda resolves no subscription field"
                        .into(),
                )
                .into())
            }
            _ if call.is_image_scan() => {
                let (operation, mut places) = operation::image_scans(&self.types, &[call]);
                let path = places.pop().expect("one place per call")?;
                match operation {
                    Some(operation) => (operation, path),
                    None => return Ok(Value::Null),
                }
            }
            _ => operation::on_parent_image(&self.types, call)?,
        };
        let response = self.execute(operation, caller, budget).await;
        answer::value_at(&response, &path)
    }

    /// A `BatchInvoke`: the `Image.scan` calls of each caller and selection as one operation,
    /// any other call on its own; the items in the order of the calls.
    async fn batch(&self, events: Vec<Value>, budget: &ResponseBudget) -> Vec<Value> {
        let mut results: Vec<Option<Result<Value, ResolverError>>> = Vec::new();
        results.resize_with(events.len(), || None);
        let calls: Vec<Option<Call>> = events
            .into_iter()
            .zip(results.iter_mut())
            .map(|(event, result)| match operation::call_of(event) {
                Ok(call) => Some(call),
                Err(e) => {
                    *result = Some(Err(e.into()));
                    None
                }
            })
            .collect();
        let mut scan_groups: BTreeMap<(Role, String, String), Vec<usize>> = BTreeMap::new();
        let mut singles = Vec::new();
        for (at, call) in calls.iter().enumerate() {
            match call {
                None => {}
                Some(call) if call.is_image_scan() => {
                    let key = (
                        self.access.role_of(&call.identity),
                        call.selection.clone(),
                        Value::Object(call.variables.clone()).to_string(),
                    );
                    scan_groups.entry(key).or_default().push(at);
                }
                Some(call) => singles.push((at, call)),
            }
        }
        let groups = scan_groups.into_values().map(|indices| async {
            let group: Vec<&Call> = indices
                .iter()
                .map(|&i| calls[i].as_ref().expect("grouped calls parsed"))
                .collect();
            let caller = self.access.caller(&group[0].identity);
            let (operation, places) = operation::image_scans(&self.types, &group);
            let response = match operation {
                Some(operation) => Some(self.execute(operation, caller, budget).await),
                None => None,
            };
            let answers: Vec<Result<Value, ResolverError>> = places
                .into_iter()
                .map(|place| match (place, &response) {
                    (Err(e), _) => Err(ResolverError::from(e)),
                    (Ok(path), Some(response)) => answer::value_at(response, &path),
                    (Ok(_), None) => Ok(Value::Null),
                })
                .collect();
            indices.into_iter().zip(answers).collect::<Vec<_>>()
        });
        let singles = singles
            .into_iter()
            .map(|(at, call)| async move { vec![(at, self.resolve(call, budget).await)] });
        let (grouped, single) = futures_util::future::join(
            futures_util::future::join_all(groups),
            futures_util::future::join_all(singles),
        )
        .await;
        for (at, result) in grouped.into_iter().chain(single).flatten() {
            results[at] = Some(result);
        }
        results
            .into_iter()
            .map(|result| answer::batch_item(result.expect("every call is answered")))
            .collect()
    }

    /// The caller of `call`, or why the call is refused before it runs: a write by an identity
    /// that may not write (the schema's guard would refuse it too, naming an API key header
    /// AppSync callers do not have).
    fn caller_for(&self, call: &Call) -> Result<Caller, ResolverError> {
        let caller = self.access.caller(&call.identity);
        if call.parent == "Mutation" && !caller.can_write() {
            return Err(AppSyncAccess::write_refusal(&call.identity).into());
        }
        Ok(caller)
    }

    /// Runs `operation` as `caller`, prepared as every door prepares a request.
    async fn execute(&self, operation: Operation, caller: Caller, budget: &ResponseBudget) -> async_graphql::Response {
        let Operation { text, variables } = operation;
        let request =
            async_graphql::Request::new(text).variables(async_graphql::Variables::from_json(Value::Object(variables)));
        let per_request = PerRequest {
            caller: Some(caller),
            response_budget: Some(budget.clone()),
        };
        prepare_request(request, per_request).execute(&self.schema).await
    }
}
