//! The DataLoaders behind per-parent reads. A field that reads something for each of its
//! parents (`Image.scan`) does not read it itself: it hands its key to its request's loader,
//! which gathers the keys of every parent in the request and reads them in one batched call
//! of the port (`ScanStore::get_many`). So a list of 100 images costs one scan read, and so
//! does any list a later field returns. `Query.image` loads its row the same way, so that
//! aliased `image(id:)` fields come back together and their scans make one batch too.
//!
//! One [`Loader`] per key type. The loaders are per request ([`RequestLoaders`], put on the
//! request by [`crate::schema::prepare_request`]), never shared across requests: a shared
//! loader would batch one caller's keys with another's, under the wrong request's deadline.
//! They do not cache either ([`DataLoader::new`] is `NoCache`): a mutation field can change a
//! scan that an earlier field of the same operation read, and a subscription's request lives
//! as long as its stream; a key asked twice in one batch is still read once.
//!
//! **When a batch is read.** async-graphql's loader waits a fixed delay after the first key
//! (1 ms by default), on a task of its own, then reads what it has. That splits a list on a
//! busy machine: its items are polled 32 at a time, between turns of the scheduler, and a
//! timer does not wait for the turns (a 50-image list was seen to cost two reads). So the
//! delay is zero, and the spawner does not spawn: it hands the batch to the request's
//! [`LoadGate`], which holds it until the request has nothing left to run. Every field is
//! then waiting, on a batch or on a read of its own, and no key can arrive until one of
//! those answers. The gate then runs the batches on the request's own task, beside the
//! request: their answers wake the fields they feed within the same poll, so fields fed by
//! one batch ask their next keys together. And the batch keeps the request's deadline and
//! tracing span, which a task-local value and a span lose across a spawn.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::futures_util::stream::{FuturesUnordered, Stream};
use async_graphql::ErrorExtensions;
use tracing::Instrument;

use crate::catalog::Catalog;
use crate::domain::image::{ImageRecord, Sha256Hex};
use crate::domain::scan::ScanRecord;
use crate::scanning::Scanner;

/// Scans by the SHA-256 of the scanned bytes: `Image.scan`.
pub(crate) struct ScanLoader {
    scanner: Scanner,
}

impl Loader<Sha256Hex> for ScanLoader {
    type Value = ScanRecord;
    /// Already the client's error: made (and an internal cause logged and counted) once per
    /// batch, not once per parent that shares it.
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Sha256Hex]) -> Result<HashMap<Sha256Hex, ScanRecord>, Self::Error> {
        let keys: Vec<&Sha256Hex> = keys.iter().collect();
        self.scanner.scans_of(&keys).await.map_err(|e| e.extend())
    }
}

/// Image rows by the id as a client wrote it: `Query.image`. Each row is its own read (the
/// tables have no batched read by id), made concurrently; what batching them buys is that
/// they answer together. A bad id or a failed read is that key's error alone.
pub(crate) struct ImageLoader {
    catalog: Catalog,
}

impl Loader<String> for ImageLoader {
    type Value = Result<ImageRecord, async_graphql::Error>;
    type Error = std::convert::Infallible;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let reads = keys.iter().map(|id| async move { (id, self.catalog.image(id).await) });
        let rows = async_graphql::futures_util::future::join_all(reads).await;
        Ok(rows
            .into_iter()
            .filter_map(|(id, row)| match row {
                Ok(None) => None,
                Ok(Some(record)) => Some((id.clone(), Ok(record))),
                Err(e) => Some((id.clone(), Err(e.extend()))),
            })
            .collect())
    }
}

/// The loaders of one request, each made on its first use, and the gate their batches wait
/// at. Cloning shares them: the operations of one batched HTTP request share one set, as
/// they share one response budget.
#[derive(Clone, Default)]
pub(crate) struct RequestLoaders {
    scans: Arc<OnceLock<DataLoader<ScanLoader>>>,
    images: Arc<OnceLock<DataLoader<ImageLoader>>>,
    gate: LoadGate,
}

impl RequestLoaders {
    /// The request's scan loader, reading through `scanner`.
    pub(crate) fn scans(&self, scanner: &Scanner) -> &DataLoader<ScanLoader> {
        self.scans.get_or_init(|| {
            let gate = self.gate.clone();
            let loader = ScanLoader {
                scanner: scanner.clone(),
            };
            DataLoader::new(loader, move |batch| gate.hold(batch)).delay(Duration::ZERO)
        })
    }

    /// The request's image-row loader, reading through `catalog`.
    pub(crate) fn images(&self, catalog: &Catalog) -> &DataLoader<ImageLoader> {
        self.images.get_or_init(|| {
            let gate = self.gate.clone();
            let loader = ImageLoader {
                catalog: catalog.clone(),
            };
            DataLoader::new(loader, move |batch| gate.hold(batch)).delay(Duration::ZERO)
        })
    }

    pub(crate) fn gate(&self) -> &LoadGate {
        &self.gate
    }
}

/// A loader's batch: gathers its keys when first polled, then reads them.
type Batch = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where a request's batches wait until the request is idle (see the module header).
#[derive(Clone, Default)]
pub(crate) struct LoadGate(Arc<GateState>);

#[derive(Default)]
struct GateState {
    /// Whether the request runs under [`LoadGate::run`]. If not, nothing would run a held
    /// batch, so batches start on a task of their own at once (batched less well, but
    /// never stuck); [`crate::schema::Prepared`] makes that the exception.
    running: AtomicBool,
    held: Mutex<Vec<Batch>>,
}

impl LoadGate {
    /// Called by a DataLoader, on the request's task, with a batch it would start.
    fn hold(&self, batch: Batch) {
        if self.0.running.load(Ordering::SeqCst) {
            self.0.held.lock().expect("gate lock").push(batch);
        } else {
            tokio::spawn(crate::deadline::inherited(batch).in_current_span());
        }
    }

    fn take_held(&self) -> Vec<Batch> {
        std::mem::take(&mut *self.0.held.lock().expect("gate lock"))
    }

    /// `work` (a request's execution: a future, or a stream of responses), running the held
    /// batches beside it each time it stops with nothing left to run.
    pub(crate) fn run<W>(&self, work: W) -> Gated<W> {
        self.0.running.store(true, Ordering::SeqCst);
        Gated {
            work: Box::pin(work),
            gate: self.clone(),
            batches: FuturesUnordered::new(),
        }
    }
}

/// A request's execution under its [`LoadGate`], with the batches it released.
pub(crate) struct Gated<W> {
    work: Pin<Box<W>>,
    gate: LoadGate,
    batches: FuturesUnordered<Batch>,
}

impl<W> Gated<W> {
    /// Polls the work, then the running batches, with a waker that notes whether anything
    /// was woken meanwhile (the work has more to run now: a list yielding between its items,
    /// a batch that answered). If nothing was, everything the work waits for is outside it,
    /// and the held batches start, polled here at once.
    fn poll_work<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl Fn(Pin<&mut W>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        loop {
            let noted = Arc::new(NotedWake {
                woken: AtomicBool::new(false),
                waker: cx.waker().clone(),
            });
            let waker = Waker::from(noted.clone());
            let mut noted_cx = Context::from_waker(&waker);
            if let Poll::Ready(done) = poll(self.work.as_mut(), &mut noted_cx) {
                return Poll::Ready(done);
            }
            while let Poll::Ready(Some(())) = Pin::new(&mut self.batches).poll_next(&mut noted_cx) {}
            if noted.woken.load(Ordering::SeqCst) {
                // Woken through `cx` as well: polled again soon, after other tasks' turn.
                return Poll::Pending;
            }
            let held = self.gate.take_held();
            if held.is_empty() {
                return Poll::Pending;
            }
            self.batches.extend(held);
        }
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.get_mut().poll_work(cx, |work, cx| work.poll(cx))
    }
}

impl<S: Stream> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.get_mut().poll_work(cx, |work, cx| work.poll_next(cx))
    }
}

/// A waker that passes every wake on and remembers that there was one.
struct NotedWake {
    woken: AtomicBool,
    waker: Waker,
}

impl Wake for NotedWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.waker.wake_by_ref();
    }
}

/// The error of a field that needs its request's loaders where the door did not give them.
pub(crate) fn unprepared() -> async_graphql::Error {
    crate::error::ApiError::Internal(anyhow::anyhow!(
        "a request ran without its loaders: every door must pass it through resolvers::schema::prepare_request"
    ))
    .extend()
}
