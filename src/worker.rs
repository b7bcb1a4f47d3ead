//! The local scan worker: the embedded-side answer to "the work happens elsewhere".
//!
//! `requestScan` records a `PENDING` scan and sends its id down a channel; tasks here take ids
//! off it and call [`Scanner::run`], at most [`CONCURRENT_SCANS`] at a time (detection is
//! CPU-bound). At start-up every scan left `PENDING` or `RUNNING` by a crash or a stop is
//! queued again, so a restart finishes what was interrupted; a run whose scan store failed is
//! queued again after a pause, so a passing store failure does not leave a scan RUNNING.

use std::sync::Arc;

use resolvers::domain::image::Sha256Hex;
use resolvers::ports::{NoDispatch, ScanDispatch};
use resolvers::scanning::Scanner;
use tokio::sync::{mpsc, Semaphore};

/// Scans worked on at once.
pub const CONCURRENT_SCANS: usize = 2;

/// Pause before a scan whose store failed is tried again.
const RETRY_FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// One scan to work on.
pub struct Job {
    id: Sha256Hex,
    /// Take over a RUNNING scan (recovery, or a retry after the store failed).
    reclaim: bool,
    /// Times this scan's store failed in a row (for the pause before the next try).
    retries: u32,
}

/// The sending side, given to the [`Scanner`] as its dispatcher.
pub struct LocalDispatch {
    queue: mpsc::UnboundedSender<Job>,
}

impl ScanDispatch for LocalDispatch {
    fn dispatch(&self, id: &Sha256Hex) {
        // The receiver lives as long as the server; a send can only fail during shutdown,
        // and the scan then stays PENDING for the next start to pick up.
        let _ = self.queue.send(Job {
            id: id.clone(),
            reclaim: false,
            retries: 0,
        });
    }
}

/// The receiving side, until the scanner exists to work with.
pub struct WorkerQueue {
    receiver: mpsc::UnboundedReceiver<Job>,
    sender: mpsc::UnboundedSender<Job>,
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
        // Its own runs dispatch nothing: retries go through the queue it holds.
        let scanner = scanner.with_dispatch(Arc::new(NoDispatch));
        tokio::spawn(async move {
            // Everything unfinished: this worker is the only one, so none of it is in hand.
            let everything = chrono::Utc::now() + chrono::Duration::days(1);
            match scanner.scans().unfinished(everything).await {
                Ok(left) => {
                    if !left.is_empty() {
                        tracing::info!(count = left.len(), "resuming unfinished scans");
                    }
                    for id in left {
                        let _ = sender.send(Job {
                            id,
                            reclaim: true,
                            retries: 0,
                        });
                    }
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "could not list unfinished scans"),
            }
            // Weak: the worker must not keep its own queue open (see above); retries go
            // through it while the server lives.
            let retries = sender.downgrade();
            drop(sender);
            let slots = Arc::new(Semaphore::new(CONCURRENT_SCANS));
            while let Some(job) = receiver.recv().await {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    break;
                };
                let scanner = scanner.clone();
                let retries = retries.clone();
                tokio::spawn(async move {
                    let outcome = scanner.run(&job.id, job.reclaim).await;
                    drop(slot);
                    if let Err(e) = outcome {
                        // The scan store failed and the scan is left claimable: try again
                        // later, taking it over (its claim cap ends a hopeless one), with
                        // doubling pauses while the store stays down.
                        let pause = RETRY_FIRST_PAUSE * 2u32.pow(job.retries.min(7));
                        tracing::error!(scan = %job.id, error = format!("{e:#}"), "scan store failed; retrying in {pause:?}");
                        tokio::time::sleep(pause).await;
                        if let Some(queue) = retries.upgrade() {
                            let _ = queue.send(Job {
                                id: job.id,
                                reclaim: true,
                                retries: job.retries + 1,
                            });
                        }
                    }
                });
            }
        })
    }
}
