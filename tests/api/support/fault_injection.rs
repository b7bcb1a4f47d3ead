//! Fault injection: wrappers around every port (image store, chunk tables, scan store, cat
//! detector) that fail a named step while it is armed: [`crate::support::hooked::Hooked`] ports with
//! [`Faults`] as the hook, and [`FaultyDetector`]. `TestApp::builder(backend).faults(…)` runs a
//! real server over the wrapped ports; the tests in `faults.rs` arm each step of upload,
//! delete, setWeight and scan in turn and check what is left afterwards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use resolvers::domain::detection::{DetectError, Detection};
use resolvers::ports::{CatDetector, ScanInput};

use crate::support::hooked::Hook;

/// How an armed step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Returns an error.
    Error,
    /// Never answers in time (sleeps far longer than any test waits; a timeout must end it).
    Hang,
    /// The real port runs and its write commits, then the call reports an error anyway (a
    /// lost response, a timeout after the server acted): the caller cannot tell the two apart.
    AfterCommit,
}

/// The armed steps, each with how many more calls fail and how.
#[derive(Default)]
pub struct Faults {
    armed: Mutex<HashMap<&'static str, (u32, Fault)>>,
    /// Faults actually injected, by step.
    pub injected: Mutex<HashMap<&'static str, u32>>,
}

impl Faults {
    /// The next `times` calls of `step` fail with `fault`.
    pub fn arm(&self, step: &'static str, times: u32, fault: Fault) {
        self.armed.lock().unwrap().insert(step, (times, fault));
    }

    pub fn clear(&self) {
        self.armed.lock().unwrap().clear();
    }

    pub fn injected(&self, step: &str) -> u32 {
        self.injected.lock().unwrap().get(step).copied().unwrap_or(0)
    }

    /// Runs a port's `work` for `step`, failing it as armed: before it runs (`Error`, `Hang`),
    /// or after it has run (`AfterCommit`).
    async fn run<T>(
        &self,
        step: &'static str,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        if self.peek(step) == Some(Fault::AfterCommit) {
            let done = work.await?;
            self.enter(step).await?;
            return Ok(done);
        }
        self.enter(step).await?;
        work.await
    }

    fn peek(&self, step: &str) -> Option<Fault> {
        match self.armed.lock().unwrap().get(step) {
            Some((left, fault)) if *left > 0 => Some(*fault),
            _ => None,
        }
    }

    /// Called by a wrapper at the start of `step`: fails it if armed.
    async fn enter(&self, step: &'static str) -> anyhow::Result<()> {
        let fault = {
            let mut armed = self.armed.lock().unwrap();
            match armed.get_mut(step) {
                Some((left, fault)) if *left > 0 => {
                    *left -= 1;
                    Some(*fault)
                }
                _ => None,
            }
        };
        let Some(fault) = fault else { return Ok(()) };
        *self.injected.lock().unwrap().entry(step).or_default() += 1;
        if fault == Fault::Hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        anyhow::bail!("injected fault at {step}")
    }
}

// Every step of the stores and tables may be armed: they are [`Hooked`] by the faults.
impl Hook for Faults {
    fn around<'a, T: Send + 'a>(
        &'a self,
        step: &'static str,
        work: BoxFuture<'a, anyhow::Result<T>>,
    ) -> BoxFuture<'a, anyhow::Result<T>> {
        Box::pin(self.run(step, work))
    }
}

pub struct FaultyDetector {
    pub inner: Arc<dyn CatDetector>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl CatDetector for FaultyDetector {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn detect(&self, input: &ScanInput) -> Result<Detection, DetectError> {
        // A detector's own failures are its errors; throttling-like ones are retryable.
        if let Err(e) = self.faults.enter("detector.detect").await {
            return Err(DetectError::new(
                resolvers::domain::detection::ScanFailure::DetectorUnavailable,
                e.to_string(),
            ));
        }
        self.inner.detect(input).await
    }
}
