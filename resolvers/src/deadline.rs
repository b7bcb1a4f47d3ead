//! One deadline per request, shared by every retry loop and outbound call it makes.
//!
//! On the Lambda a request has a hard end: the invocation's deadline (the function's timeout,
//! 29 s behind API Gateway's 30 s). Lambda stops the process there, mid-write and before any
//! clean-up. So the door sets a *work* deadline a margin before the hard one
//! ([`CLEANUP_MARGIN`]): retries and calls stop at the work deadline, the request is answered
//! `TIMED_OUT`, and the clean-up of what it wrote runs in the margin ([`cleanup`]). Work that
//! cannot finish in the time left is refused before it starts ([`ensure_time_for`]).
//!
//! The deadline is a task-local value set around the request by the door ([`scope`]); code
//! running outside any scope (the local server, background tasks) has no deadline and keeps
//! its own per-call limits.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::ApiError;

/// Time kept after the work deadline for the clean-up of a failed write and for the answer.
pub const CLEANUP_MARGIN: Duration = Duration::from_secs(3);

/// The deadlines of the request being served.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    /// Where work stops.
    work: Instant,
    /// Where the door itself ends (the work deadline plus [`CLEANUP_MARGIN`]).
    hard: Instant,
}

tokio::task_local! {
    static DEADLINES: Deadlines;
}

/// Runs `work` with `hard` as its hard deadline (`None`: no deadline), work stopping
/// [`CLEANUP_MARGIN`] before it.
pub async fn scope<F: Future>(hard: Option<Instant>, work: F) -> F::Output {
    match hard {
        Some(hard) => {
            let deadlines = Deadlines {
                work: hard.checked_sub(CLEANUP_MARGIN).unwrap_or(hard),
                hard,
            };
            DEADLINES.scope(deadlines, work).await
        }
        None => work.await,
    }
}

/// Runs clean-up work with the margin kept for it: its calls may run up to the hard deadline.
pub async fn cleanup<F: Future>(work: F) -> F::Output {
    match DEADLINES.try_with(|d| *d) {
        Ok(deadlines) => {
            let widened = Deadlines {
                work: deadlines.hard,
                ..deadlines
            };
            DEADLINES.scope(widened, work).await
        }
        Err(_) => work.await,
    }
}

/// `work` under the deadlines of the request running now, for work that request hands to
/// another task (a DataLoader's batched read): a task-local value does not follow a spawn.
/// Read when called, so call it on the request's own task.
pub fn inherited<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let deadlines = DEADLINES.try_with(|d| *d).ok();
    async move {
        match deadlines {
            Some(deadlines) => DEADLINES.scope(deadlines, work).await,
            None => work.await,
        }
    }
}

/// Time left before the work deadline; `None` outside any deadline.
pub fn remaining() -> Option<Duration> {
    DEADLINES
        .try_with(|d| d.work.saturating_duration_since(Instant::now()))
        .ok()
}

/// `limit`, or less if the deadline comes first.
pub fn clamp(limit: Duration) -> Duration {
    remaining().map_or(limit, |left| left.min(limit))
}

pub use crate::error::OutOfTime;

/// `Err(TIMED_OUT)` unless `needed` is left before the work deadline: for work that would
/// otherwise be cut off half done.
pub fn ensure_time_for(needed: Duration, what: &str) -> Result<(), ApiError> {
    match remaining() {
        Some(left) if left < needed => Err(ApiError::TimedOut(format!(
            "{what} needs about {} s and this request has {} s left; retry with a new request",
            needed.as_secs(),
            left.as_secs()
        ))),
        _ => Ok(()),
    }
}

/// Awaits `call` until the work deadline: [`OutOfTime`] (naming `what`) if it comes first.
pub async fn bounded<T, F>(what: &str, call: F) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    match remaining() {
        Some(left) => tokio::time::timeout(left, call)
            .await
            .unwrap_or_else(|_| Err(OutOfTime { what: what.to_owned() }.into())),
        None => call.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_stops_a_margin_before_the_hard_deadline_and_clean_up_gets_the_margin() {
        assert_eq!(remaining(), None, "no deadline outside a scope");
        let hard = Instant::now() + CLEANUP_MARGIN + Duration::from_millis(200);
        scope(Some(hard), async {
            let left = remaining().unwrap();
            assert!(left <= Duration::from_millis(200), "{left:?}");
            assert!(ensure_time_for(Duration::from_secs(1), "an upload").is_err());
            assert!(ensure_time_for(Duration::ZERO, "a read").is_ok());
            assert!(clamp(Duration::from_secs(20)) <= Duration::from_millis(200));
            let slow = bounded("a slow call", async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await
            .unwrap_err();
            assert!(slow.downcast_ref::<OutOfTime>().is_some(), "{slow:#}");
            // Past the work deadline, clean-up still has its margin.
            cleanup(async {
                assert!(remaining().unwrap() > Duration::from_secs(2));
            })
            .await;
        })
        .await;
    }

    #[tokio::test]
    async fn work_handed_to_another_task_keeps_the_requests_deadline() {
        let hard = Instant::now() + CLEANUP_MARGIN + Duration::from_secs(5);
        scope(Some(hard), async {
            let plain = tokio::spawn(async { remaining() }).await.unwrap();
            assert_eq!(plain, None, "a task-local value does not follow a spawn");
            let carried = tokio::spawn(inherited(async { remaining() })).await.unwrap();
            assert!(
                carried.is_some_and(|left| left <= Duration::from_secs(5)),
                "{carried:?}"
            );
        })
        .await;
    }
}
