//! The local scan worker: the embedded-side answer to "the work happens elsewhere".
//!
//! `requestScan` records a `PENDING` scan and sends its id down a channel; tasks here take ids
//! off it and call [`Scanner::run`], at most [`CONCURRENT_SCANS`] at a time (detection is
//! CPU-bound). At start-up every scan left `PENDING` or `RUNNING` by a crash or a stop is
//! queued again, so a restart finishes what was interrupted.

use std::sync::Arc;

use resolvers::ports::ScanDispatch;
use resolvers::scanning::Scanner;
use tokio::sync::{mpsc, Semaphore};

/// Scans worked on at once.
pub const CONCURRENT_SCANS: usize = 2;

/// The sending side, given to the [`Scanner`] as its dispatcher.
pub struct LocalDispatch {
    queue: mpsc::UnboundedSender<(String, bool)>,
}

impl ScanDispatch for LocalDispatch {
    fn dispatch(&self, id: &str) {
        // The receiver lives as long as the server; a send can only fail during shutdown,
        // and the scan then stays PENDING for the next start to pick up.
        let _ = self.queue.send((id.to_owned(), false));
    }
}

/// Dispatches nothing: for the worker's own scanner (runs never dispatch), and where something
/// else picks pending scans up (the stream-invoked scan handler on AWS).
pub struct NoDispatch;

impl ScanDispatch for NoDispatch {
    fn dispatch(&self, _id: &str) {}
}

/// The receiving side, until the scanner exists to work with.
pub struct WorkerQueue {
    receiver: mpsc::UnboundedReceiver<(String, bool)>,
    sender: mpsc::UnboundedSender<(String, bool)>,
}

/// A dispatcher for the scanner and the queue to start the worker with.
pub fn channel() -> (Arc<LocalDispatch>, WorkerQueue) {
    let (sender, receiver) = mpsc::unbounded_channel();
    (
        Arc::new(LocalDispatch { queue: sender.clone() }),
        WorkerQueue { receiver, sender },
    )
}

impl WorkerQueue {
    /// Starts the worker on the runtime: first re-queues unfinished scans, then works on
    /// whatever arrives.
    /// The worker ends once every dispatcher is gone (the server stopped) and the queue is
    /// drained; it holds no dispatcher itself, or it would keep its own queue open forever.
    pub fn start(self, scanner: Scanner) -> tokio::task::JoinHandle<()> {
        let WorkerQueue { mut receiver, sender } = self;
        let scanner = Scanner {
            dispatch: Arc::new(NoDispatch),
            ..scanner
        };
        tokio::spawn(async move {
            match scanner.scans.unfinished().await {
                Ok(left) => {
                    if !left.is_empty() {
                        tracing::info!(count = left.len(), "resuming unfinished scans");
                    }
                    for scan in left {
                        let _ = sender.send((scan.id, true));
                    }
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "could not list unfinished scans"),
            }
            drop(sender);
            let slots = Arc::new(Semaphore::new(CONCURRENT_SCANS));
            while let Some((id, reclaim)) = receiver.recv().await {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    break;
                };
                let scanner = scanner.clone();
                tokio::spawn(async move {
                    if let Err(e) = scanner.run(&id, reclaim).await {
                        tracing::error!(scan = %id, error = format!("{e:#}"), "scan store failed; the scan resumes at the next start");
                    }
                    drop(slot);
                });
            }
        })
    }
}
