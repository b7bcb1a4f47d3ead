//! [`CannedAnswers`]: an SDK interceptor that answers chosen requests the way a real AWS
//! account does under load or refusal, and moto never does: a transaction cancelled for a
//! conflict or throttling, a throughput or throttling exception, Rekognition refusing an S3
//! object; and a write that was applied but whose answer was lost to a 500 (the outcome a
//! caller cannot know). Armed per operation (optionally only for bodies containing a text), a
//! number of times; counts what it injected. Used by `contention.rs`, `aws_edges.rs` and
//! `unknown_outcomes.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::body::SdkBody;
use serde_json::json;

/// How an armed request is answered.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `TransactionCanceledException` with these cancellation reasons.
    Cancelled(&'static [&'static str]),
    /// An error response with this code.
    Error(&'static str),
    /// The request is sent on and acts (moto applies the write), then its answer is replaced
    /// by a 500 `InternalServerError`: DynamoDB's "the outcome is unknown".
    AppliedThenLost,
}

/// A transaction cancelled because another one on the same item is in flight.
pub const CONFLICT: Answer = Answer::Cancelled(&["None", "TransactionConflict"]);
/// A transaction cancelled because the table is throttled.
pub const THROTTLED_WRITE: Answer = Answer::Cancelled(&["None", "ThrottlingError"]);
/// A request refused for throughput.
pub const THROTTLED: Answer = Answer::Error("ProvisionedThroughputExceededException");
/// A write applied, and answered with a 500 as if it might not have been.
pub const APPLIED_THEN_LOST: Answer = Answer::AppliedThenLost;

struct Armed {
    operation: &'static str,
    body_contains: Option<&'static str>,
    left: u32,
    answer: Answer,
}

/// The interceptor; clones share their arming and counts.
#[derive(Clone, Default)]
pub struct CannedAnswers {
    armed: Arc<Mutex<Vec<Armed>>>,
    injected: Arc<Mutex<HashMap<&'static str, u32>>>,
}

impl std::fmt::Debug for CannedAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CannedAnswers")
    }
}

impl CannedAnswers {
    /// The next `times` requests of `operation` get `answer`.
    pub fn arm(&self, operation: &'static str, times: u32, answer: Answer) {
        self.arm_when(operation, None, times, answer);
    }

    /// The next `times` requests of `operation` whose body contains `text` get `answer`.
    pub fn arm_when(&self, operation: &'static str, text: Option<&'static str>, times: u32, answer: Answer) {
        let mut armed = self.armed.lock().unwrap();
        armed.retain(|a| !(a.operation == operation && a.body_contains == text));
        armed.push(Armed {
            operation,
            body_contains: text,
            left: times,
            answer,
        });
    }

    /// Answers injected so far for `operation`.
    pub fn injected(&self, operation: &str) -> u32 {
        self.injected.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    /// The answer for this request, if one is armed (and counts it).
    fn take(&self, operation: &str, body: &str) -> Option<Answer> {
        let mut armed = self.armed.lock().unwrap();
        let found = armed.iter_mut().find(|a| {
            a.operation == operation && a.left > 0 && a.body_contains.is_none_or(|text| body.contains(text))
        })?;
        found.left -= 1;
        *self.injected.lock().unwrap().entry(found.operation).or_default() += 1;
        Some(found.answer)
    }
}

/// The answer decided for one request, kept from the request to its response.
#[derive(Debug, Clone, Copy)]
struct Decided(Answer);

impl aws_smithy_types::config_bag::Storable for Decided {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Decided>;
}

impl Intercept for CannedAnswers {
    fn name(&self) -> &'static str {
        "CannedAnswers"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let metadata = cfg.load::<Metadata>().unwrap();
        let (service, operation) = (metadata.service().to_lowercase(), metadata.name().to_owned());
        let request = context.request_mut();
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).into_owned();
        let Some(answer) = self.take(&operation, &body) else {
            return Ok(());
        };
        cfg.interceptor_state().store_put(Decided(answer));
        // A refused DynamoDB request must not act (a refused write did not write): moto is
        // asked a harmless ListTables instead, and its answer replaced below. Other services'
        // armed requests are reads, sent as they are, and so is a write meant to act.
        if service == "dynamodb" && !matches!(answer, Answer::AppliedThenLost) {
            request
                .headers_mut()
                .insert("x-amz-target", "DynamoDB_20120810.ListTables");
            request.headers_mut().insert("content-length", "2");
            *request.body_mut() = SdkBody::from("{}");
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Decided(answer)) = cfg.load::<Decided>().copied() else {
            return Ok(());
        };
        let body = match answer {
            Answer::Cancelled(reasons) => json!({
                "__type": "TransactionCanceledException",
                "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons {reasons:?}"),
                "CancellationReasons": reasons.iter().map(|code| json!({ "Code": code })).collect::<Vec<_>>(),
            }),
            Answer::Error(code) => json!({ "__type": code, "message": format!("{code} (canned by the test)") }),
            Answer::AppliedThenLost => json!({
                "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "message": "Internal server error (canned by the test, after the write was applied)",
            }),
        };
        let status: u16 = if matches!(answer, Answer::AppliedThenLost) {
            500
        } else {
            400
        };
        let response = context.response_mut();
        *response.status_mut() = status.try_into().unwrap();
        response
            .headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        response.headers_mut().remove("x-amzn-crc32");
        *response.body_mut() = SdkBody::from(body.to_string());
        Ok(())
    }
}

/// `client` with `answers` intercepting its requests (the same configuration otherwise).
pub fn answering(client: &aws_sdk_dynamodb::Client, answers: &CannedAnswers) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(client.config().to_builder().interceptor(answers.clone()).build())
}
