//! Per-client rate limiting for the local server: a token bucket per client IP address
//! (`rate` requests a second, bursts up to `burst`), answering `429` with a GraphQL-shaped
//! `RATE_LIMITED` error and `Retry-After`. On AWS the HTTP API's stage throttling does this
//! job (serverless.yml), so the Lambda router has no such layer.
//!
//! Clients on the loopback interface are not limited unless asked (`limit_loopback`): they are
//! the person at the machine and their scripts, whose bulk work (a thousand uploads, a loop of
//! queries) must simply succeed. Everyone else — what a non-loopback bind exposes — is limited.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use resolvers::ApiError;

use super::responses::HttpError;

/// Requests per second and burst size per client; `rate` 0 turns limiting off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: u32,
    /// Limit loopback clients too (off by default: see the module's header).
    pub limit_loopback: bool,
}

/// Buckets idle this long are forgotten, so the map stays as small as the set of active clients.
const IDLE_SECS: f64 = 300.0;

struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Clone)]
struct Limiter {
    limit: RateLimit,
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
}

impl Limiter {
    /// Takes a token for `client`; `Err(seconds to wait)` when there is none.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), f64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.last).as_secs_f64() < IDLE_SECS);
        }
        let burst = f64::from(self.limit.burst.max(1));
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let refill = now.duration_since(bucket.last).as_secs_f64() * self.limit.rate;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - bucket.tokens) / self.limit.rate)
        }
    }
}

/// `router` with per-client limiting. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the client address is known;
/// requests without one share a single bucket.
pub fn with_rate_limit(router: Router, limit: RateLimit) -> Router {
    if limit.rate <= 0.0 {
        return router;
    }
    let limiter = Limiter {
        limit,
        buckets: Arc::default(),
    };
    router.layer(axum::middleware::from_fn_with_state(limiter, limit_requests))
}

async fn limit_requests(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    if client.is_loopback() && !limiter.limit.limit_loopback {
        return next.run(request).await;
    }
    match limiter.take(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let mut response = HttpError::from(ApiError::RateLimited(
                "too many requests from this client; retry after the Retry-After seconds".into(),
            ))
            .into_response();
            let seconds = wait.ceil().max(1.0) as u64;
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_per_client() {
        let limiter = Limiter {
            limit: RateLimit {
                rate: 2.0,
                burst: 3,
                limit_loopback: false,
            },
            buckets: Arc::default(),
        };
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(a, t0).is_ok());
        }
        let wait = limiter.take(a, t0).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "one token every 0.5 s: {wait}");
        assert!(limiter.take(b, t0).is_ok(), "another client has its own bucket");
        assert!(limiter.take(a, t0 + Duration::from_millis(500)).is_ok());
        assert!(limiter.take(a, t0 + Duration::from_millis(600)).is_err());
        assert!(
            limiter.take(a, t0 + Duration::from_secs(60)).is_ok(),
            "refills, up to the burst"
        );
    }
}
