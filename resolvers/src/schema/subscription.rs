//! `Subscription.scanUpdated`: a scan's status changes as they happen.
//!
//! The server polls the scan store (every [`POLL_INTERVAL`]) and emits the scan first as it
//! is, then at each status change, and ends after a final status (`SUCCEEDED` / `FAILED`).
//! Served over WebSocket (graphql-transport-ws) by the local server at `/graphql/ws`. On Lambda
//! there is no WebSocket: poll `scanResult(id)` every second until the status is final.

use std::time::Duration;

use async_graphql::futures_util::stream::{self, Stream};
use async_graphql::{Context, ErrorExtensions, Result, ResultExt, Subscription as GqlSubscription, ID};

use crate::domain::scan::ScanStatus;
use crate::error::ApiError;
use crate::scanning::Scanner;
use crate::schema::scanner;
use crate::schema::types::Scan;

/// How often the store is read for a change.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// A subscription gives up (with an error) after this long without a final status.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct Subscription;

struct Watch {
    scanner: Scanner,
    id: String,
    last: Option<ScanStatus>,
    waited: Duration,
    done: bool,
}

#[GqlSubscription]
impl Subscription {
    /// The scan now, then at each status change, ending with its final status.
    async fn scan_updated(&self, ctx: &Context<'_>, id: ID) -> Result<impl Stream<Item = Result<Scan>>> {
        let scanner = scanner(ctx)?.clone();
        if scanner.scan(&id).await.extend()?.is_none() {
            return Err(ApiError::NotFound(format!("no scan {}", id.as_str())).extend());
        }
        let watch = Watch {
            scanner,
            id: id.to_string(),
            last: None,
            waited: Duration::ZERO,
            done: false,
        };
        Ok(stream::unfold(watch, |mut watch| async move {
            if watch.done {
                return None;
            }
            loop {
                let scan = match watch.scanner.scan(&watch.id).await {
                    Ok(Some(scan)) => scan,
                    Ok(None) => {
                        watch.done = true;
                        let gone = ApiError::NotFound(format!("scan {} is gone", watch.id)).extend();
                        return Some((Err(gone), watch));
                    }
                    Err(err) => {
                        watch.done = true;
                        return Some((Err(err.extend()), watch));
                    }
                };
                if watch.last != Some(scan.status) {
                    watch.last = Some(scan.status);
                    watch.done = scan.status.is_final();
                    return Some((Ok(Scan(scan)), watch));
                }
                if watch.waited >= MAX_WAIT {
                    watch.done = true;
                    let timeout = ApiError::Internal(anyhow::anyhow!("scan {} not final after {MAX_WAIT:?}", watch.id));
                    return Some((Err(timeout.extend()), watch));
                }
                tokio::time::sleep(POLL_INTERVAL).await;
                watch.waited += POLL_INTERVAL;
            }
        }))
    }
}
