//! What a busy DynamoDB table answers, and how pawql rides it out.
//!
//! moto never says any of this; a real table does, under exactly the load pawql is built for:
//!
//! - `TransactionCanceledException` with reasons: `ConditionalCheckFailed` (another writer
//!   won the race for the chunk info: re-read and try again), `TransactionConflict` (another
//!   transaction on the same item is in flight — on `TransactGetItems` too, whenever anyone
//!   uploads to that label), `ThrottlingError` / `ProvisionedThroughputExceeded`.
//! - `ThrottlingException`, `ProvisionedThroughputExceededException`, `RequestLimitExceeded`,
//!   `TransactionConflictException`, `TransactionInProgressException`, `InternalServerError`.
//!
//! All of them mean "nothing happened, try again": they are retried with jittered, growing
//! pauses inside [`CONTENTION_BUDGET`], so a request that meets contention answers late rather
//! than with a 500, and never outlives the API Lambda (29 s). Anything else is an error.
//!
//! Except for a write. DynamoDB documents `InternalServerError` as "the outcome is unknown":
//! the transaction may have committed. So may one whose response was lost or timed out. A
//! re-read and re-plan after such a write would see the write's own effect as someone else's
//! (a delete that happened answers "nothing to delete", an upload finds "its" row already
//! there). [`transact_exactly_once`] sends each transaction with a `ClientRequestToken` and,
//! while the outcome is unknown, sends the very same request again: DynamoDB takes a repeat
//! within 10 minutes of its completion as the same transaction, applied once, so the answer is
//! the first try's. A repeat that meets the first still running is answered
//! `TransactionInProgressException`; that too is resent with the token, never re-planned. The
//! SDK's own retries of a 500 resend the same request, token included, so they are safe too.
//! Only a known refusal (a cancellation) goes back to the caller to re-read and re-plan, with a
//! new token. When the outcome is still unknown at the end (the request's deadline, or the
//! budget spent), the error says so ([`resolvers::error::WriteOutcomeUnknown`]), so the caller
//! does not clean up after a write that may stand.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};
use tokio::time::Instant;

/// The longest one chunk-table operation keeps retrying contention: inside API Gateway's 29 s
/// with room for the upload's S3 put before it and the orphan clean-up after it.
pub const CONTENTION_BUDGET: Duration = Duration::from_secs(20);

/// Error codes that mean the request did nothing and may simply be sent again (DynamoDB's,
/// and SSM's `ThrottlingException`).
const TRANSIENT_CODES: [&str; 7] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "ServiceUnavailable",
];

/// Cancellation reasons that mean the transaction did nothing and may be tried again (after
/// a re-read: `ConditionalCheckFailed` is a lost race).
const RETRYABLE_REASONS: [&str; 6] = [
    "None",
    "ConditionalCheckFailed",
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// A request DynamoDB refused for load or contention: nothing happened, try again.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {code} (contention or throttling; retried)")]
pub struct Transient {
    pub what: String,
    pub code: String,
}

/// Whether a transaction's cancellation reasons all allow another try.
pub fn retryable_cancellation(reasons: &[CancellationReason]) -> bool {
    reasons
        .iter()
        .all(|reason| reason.code().is_none_or(|code| RETRYABLE_REASONS.contains(&code)))
}

/// An SDK error as an `anyhow::Error`: a [`Transient`] when it means "try again" (by its code,
/// or a cancellation whose reasons all do), else the error itself with `what` as context.
pub fn classify<E, R>(err: SdkError<E, R>, what: &str) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(service) = &err {
        let code = service.err().code().unwrap_or_default();
        let cancelled_for_load = code == "TransactionCanceledException"
            && cancellation_reasons(service.err() as &dyn std::any::Any)
                .is_some_and(|reasons| retryable_cancellation(&reasons));
        if TRANSIENT_CODES.contains(&code) || cancelled_for_load {
            return Transient {
                what: what.to_owned(),
                code: code.to_owned(),
            }
            .into();
        }
    }
    anyhow::Error::new(err).context(what.to_owned())
}

/// The cancellation reasons of a `TransactionCanceledException`, whichever operation raised it.
fn cancellation_reasons(err: &dyn std::any::Any) -> Option<Vec<CancellationReason>> {
    use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = err.downcast_ref() {
        return Some(e.cancellation_reasons().to_vec());
    }
    if let Some(TransactGetItemsError::TransactionCanceledException(e)) = err.downcast_ref() {
        return Some(e.cancellation_reasons().to_vec());
    }
    None
}

/// Error codes after which a write may or may not have been applied (DynamoDB's "Error
/// handling": an `InternalServerError` on a write leaves its outcome unknown).
/// `TransactionInProgressException` is the answer to a repeat of a transaction still running:
/// whether it will apply is not known yet.
const UNKNOWN_OUTCOME_CODES: [&str; 3] = [
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Whether a `TransactWriteItems` error leaves open whether it was applied: any 5xx (whatever
/// its code, a proxy's 502 too), a repeat meeting the first still in progress, a response that
/// never came, or one that could not be read.
fn outcome_unknown<E: ProvideErrorMetadata>(err: &SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>) -> bool {
    match err {
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || service
                    .err()
                    .code()
                    .is_some_and(|code| UNKNOWN_OUTCOME_CODES.contains(&code))
        }
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) | SdkError::DispatchFailure(_) => true,
        _ => false,
    }
}

/// A fresh `ClientRequestToken` (1 to 36 characters): 128 random bits in hex.
fn request_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// One transaction, applied at most once and answered as its first try would have been (see
/// the module header): sent with a token of its own, and resent unchanged with that token while
/// the outcome is unknown, inside the contention budget and the request's deadline. A known
/// refusal comes back classified, as from [`classify`], for the caller to re-read and re-plan.
pub async fn transact_exactly_once(
    client: &aws_sdk_dynamodb::Client,
    writes: Vec<TransactWriteItem>,
    what: &str,
) -> anyhow::Result<()> {
    let token = request_token();
    let mut budget = Budget::start();
    // A definite answer to a resend is the transaction's (the token makes every send the same
    // one); only giving up without one leaves the outcome open.
    let unknown = |cause: anyhow::Error| cause.context(resolvers::error::WriteOutcomeUnknown { what: what.to_owned() });
    loop {
        let sent = client
            .transact_write_items()
            .set_transact_items(Some(writes.clone()))
            .client_request_token(&token)
            .send();
        // Abandoned in flight at the deadline: it may still be applied.
        let answered = match resolvers::deadline::bounded(what, async { Ok(sent.await) }).await {
            Ok(answered) => answered,
            Err(out_of_time) => return Err(unknown(out_of_time)),
        };
        match answered {
            Ok(_) => return Ok(()),
            Err(err) if outcome_unknown(&err) => {
                tracing::warn!(what, token, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err), "write outcome unknown; resending it with its token");
                if let Err(spent) = budget
                    .pause(&format!("{what} (outcome unknown: it may have been applied)"))
                    .await
                {
                    return Err(unknown(spent));
                }
            }
            Err(err) => return Err(classify(err, what)),
        }
    }
}

/// Whether an error means "try again".
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.downcast_ref::<Transient>().is_some()
}

/// The time one operation may spend retrying, and its pauses.
pub struct Budget {
    started: Instant,
    limit: Duration,
    attempt: u32,
}

impl Budget {
    /// [`CONTENTION_BUDGET`] from now, or less if the request's deadline comes first.
    pub fn start() -> Budget {
        Budget::within(resolvers::deadline::clamp(CONTENTION_BUDGET))
    }

    pub fn within(limit: Duration) -> Budget {
        Budget {
            started: Instant::now(),
            limit,
            attempt: 0,
        }
    }

    /// Attempts made so far (0 before the first pause).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Pauses before the next attempt, or gives up (an internal error naming `what`) when
    /// the pause would end past the budget.
    pub async fn pause(&mut self, what: &str) -> anyhow::Result<()> {
        self.attempt += 1;
        let pause = jittered(self.attempt);
        if resolvers::deadline::remaining().is_some_and(|left| left < pause) {
            return Err(resolvers::deadline::OutOfTime {
                what: format!("{what} (contended, {} attempts)", self.attempt),
            }
            .into());
        }
        if self.started.elapsed() + pause > self.limit {
            anyhow::bail!(
                "{what}: still contended after {} attempts in {:?}",
                self.attempt,
                self.started.elapsed()
            );
        }
        tokio::time::sleep(pause).await;
        Ok(())
    }
}

/// A short, growing, jittered pause (1 ms up to 5 × 2^attempt ms, capped at 320 ms) so racing
/// writers spread out instead of colliding again in step.
fn jittered(attempt: u32) -> Duration {
    let cap_ms = 5u64 << attempt.min(6);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    Duration::from_millis(1 + nanos % cap_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn cancellations_for_load_or_races_are_retried_and_others_are_not() {
        assert!(retryable_cancellation(&[reason("None"), reason("TransactionConflict")]));
        assert!(retryable_cancellation(&[reason("ThrottlingError"), reason("None")]));
        assert!(retryable_cancellation(&[
            reason("ConditionalCheckFailed"),
            reason("None")
        ]));
        assert!(!retryable_cancellation(&[reason("ValidationError"), reason("None")]));
        assert!(!retryable_cancellation(&[reason("ItemCollectionSizeLimitExceeded")]));
    }

    /// On tokio's paused clock: what is tested is the budget's arithmetic, not how punctual the
    /// machine's timer is under load.
    #[tokio::test(start_paused = true)]
    async fn a_budget_gives_up_once_its_time_is_spent() {
        let limit = Duration::from_millis(300);
        let mut budget = Budget::within(limit);
        let mut pauses = 0;
        while budget.pause("test").await.is_ok() {
            pauses += 1;
        }
        assert!(pauses >= 3, "{pauses}");
        assert!(budget.started.elapsed() <= limit, "never sleeps past the budget");
    }
}
