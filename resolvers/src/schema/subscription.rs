//! `Subscription.scanUpdated` and `scansUpdated`: scans' status changes as they happen.
//!
//! The server polls the scan store (one scan every [`POLL_INTERVAL`]; a set every
//! [`SET_POLL_INTERVAL`], one batched read per 100 scans still open, no debug data) and emits
//! each scan first as it is, then at each status change, and ends once every watched scan is
//! final (`SUCCEEDED` / `FAILED`), or after [`MAX_WAIT`] with a last `TIMED_OUT` error.
//! Served over WebSocket (graphql-transport-ws) at `/graphql/ws` and over Server-Sent Events
//! (graphql-sse) at `/graphql/stream`, which is what works where WebSockets do not.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use async_graphql::futures_util::stream::{self, Stream};
use async_graphql::{Context, ErrorExtensions, Result, ResultExt, Subscription as GqlSubscription, ID};

use crate::domain::image::Sha256Hex;
use crate::domain::scan::{ScanRecord, ScanStatus};
use crate::error::ApiError;
use crate::scanning::Scanner;
use crate::schema::scanner;
use crate::schema::types::Scan;

/// How often the store is read for a change.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often a set of scans is read (each read is a batch).
pub const SET_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A subscription gives up (with a `TIMED_OUT` error as its last event) after this long
/// without every watched scan final.
/// Under the stream function's 15-minute limit, so the last event always goes out.
const MAX_WAIT: Duration = Duration::from_secs(14 * 60);
/// Most scans one `scansUpdated` follows (a batch file of `pawql scan`).
pub const MAX_WATCHED_SCANS: usize = 1_000;

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
                    let timeout = ApiError::TimedOut(format!(
                        "scan {} not final after {} s; ask scanResult later",
                        watch.id,
                        MAX_WAIT.as_secs()
                    ));
                    return Some((Err(timeout.extend()), watch));
                }
                tokio::time::sleep(POLL_INTERVAL).await;
                watch.waited += POLL_INTERVAL;
            }
        }))
    }

    /// Each of these scans now, then each again at its status changes, ending once all are
    /// final: a batch followed on one stream (at most 1,000; read in batches of 100).
    async fn scans_updated(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<impl Stream<Item = Result<Scan>>> {
        let scanner = scanner(ctx)?.clone();
        let first = scanner.scans_by_id(&ids, MAX_WATCHED_SCANS).await.extend()?;
        let missing: Vec<&str> = ids
            .iter()
            .zip(&first)
            .filter(|(_, scan)| scan.is_none())
            .map(|(id, _)| id.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::NotFound(format!("no scan {}", missing.join(", "))).extend());
        }
        let mut set = SetWatch {
            scanner,
            last: HashMap::new(),
            ready: VecDeque::new(),
            waited: Duration::ZERO,
            done: false,
        };
        set.take(first.into_iter().flatten());
        Ok(stream::unfold(set, |mut set| async move {
            loop {
                if let Some(scan) = set.ready.pop_front() {
                    return Some((Ok(Scan(scan)), set));
                }
                let open: Vec<String> = set
                    .last
                    .iter()
                    .filter(|(_, status)| !status.is_final())
                    .map(|(id, _)| id.to_string())
                    .collect();
                if set.done || open.is_empty() {
                    return None;
                }
                if set.waited >= MAX_WAIT {
                    set.done = true;
                    let timeout = ApiError::TimedOut(format!(
                        "{} scans not final after {} s; ask scanResults later",
                        open.len(),
                        MAX_WAIT.as_secs()
                    ));
                    return Some((Err(timeout.extend()), set));
                }
                tokio::time::sleep(SET_POLL_INTERVAL).await;
                set.waited += SET_POLL_INTERVAL;
                match set.scanner.scans_by_id(&open, MAX_WATCHED_SCANS).await {
                    Ok(now) => set.take(now.into_iter().flatten()),
                    Err(err) => {
                        set.done = true;
                        return Some((Err(err.extend()), set));
                    }
                }
            }
        }))
    }
}

/// A set of scans being followed: each one's last status sent, and what is ready to send.
struct SetWatch {
    scanner: Scanner,
    last: HashMap<Sha256Hex, ScanStatus>,
    ready: VecDeque<ScanRecord>,
    waited: Duration,
    done: bool,
}

impl SetWatch {
    /// Queues every scan whose status is new since it was last sent.
    fn take(&mut self, scans: impl IntoIterator<Item = ScanRecord>) {
        for scan in scans {
            if self.last.get(&scan.id) != Some(&scan.status) {
                self.last.insert(scan.id.clone(), scan.status);
                self.ready.push_back(scan);
            }
        }
    }
}
