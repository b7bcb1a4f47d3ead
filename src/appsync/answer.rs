//! What goes back to AppSync: a call's value, found in the operation's response, or its error
//! as AppSync shows errors (`errorType`, `errorMessage`); and, for a `BatchInvoke`, one item
//! per call in the order of the calls, `{data}` or `{data: null, errorMessage, errorType}`
//! (the per-item shape AppSync documents for batched Lambda resolvers).
//!
//! `errorType` is the error's `extensions.code` and `errorMessage` its public message, as
//! `/graphql` shows them: an internal error reads `INTERNAL_SERVER_ERROR` / "internal server
//! error" and its cause stays in the logs. A call whose answer carries an error answers that
//! error alone: AppSync takes a value or an error from a direct Lambda resolver, not both, so
//! where `/graphql` would give the rest of a partly failed selection, AppSync gives the error.

use async_graphql::PathSegment;
use resolvers::ApiError;
use serde::Serialize;
use serde_json::{json, Value};

use super::operation::{Path, PathKey};

/// An error as AppSync shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolverError {
    pub error_type: String,
    pub error_message: String,
}

impl From<ApiError> for ResolverError {
    fn from(error: ApiError) -> ResolverError {
        error.log_if_internal();
        ResolverError {
            error_type: error.code().to_owned(),
            error_message: error.to_string(),
        }
    }
}

impl From<ResolverError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(error: ResolverError) -> Self {
        lambda_http::lambda_runtime::Diagnostic {
            error_type: error.error_type,
            error_message: error.error_message,
        }
    }
}

/// The call at `path` in `response`: its value, or the first error on it (on the path, under
/// it, or on a field above it: a failed `scanResults` fails every parent it was asked for).
pub fn value_at(response: &async_graphql::Response, path: &Path) -> Result<Value, ResolverError> {
    if let Some(error) = response.errors.iter().find(|e| concerns(&e.path, path)) {
        let code = error
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code"))
            .and_then(|code| match code {
                async_graphql::Value::String(code) => Some(code.clone()),
                _ => None,
            })
            // async-graphql's own errors (validation, limits) have no code: the request's
            // fault, as `/graphql` says too.
            .unwrap_or_else(|| ApiError::REQUEST_ERROR_CODE.to_owned());
        return Err(ResolverError {
            error_type: code,
            error_message: error.message.clone(),
        });
    }
    let mut value = response.data.clone().into_json().unwrap_or(Value::Null);
    for key in path {
        value = match key {
            PathKey::Field(name) => value.get_mut(name.as_str()).map(Value::take),
            PathKey::Index(i) => value.get_mut(*i).map(Value::take),
        }
        .unwrap_or(Value::Null);
    }
    Ok(value)
}

/// Whether an error at `at` concerns the call at `path`: one is a prefix of the other (an
/// error without a path, a request error, concerns every call).
fn concerns(at: &[PathSegment], path: &Path) -> bool {
    at.iter().zip(path).all(|(segment, key)| match (segment, key) {
        (PathSegment::Field(name), PathKey::Field(ours)) => name == ours,
        (PathSegment::Index(i), PathKey::Index(ours)) => i == ours,
        _ => false,
    })
}

/// One item of a `BatchInvoke` answer.
pub fn batch_item(result: Result<Value, ResolverError>) -> Value {
    match result {
        Ok(data) => json!({ "data": data }),
        Err(error) => json!({
            "data": null,
            "errorMessage": error.error_message,
            "errorType": error.error_type,
        }),
    }
}
