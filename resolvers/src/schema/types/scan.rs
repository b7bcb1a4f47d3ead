//! `Scan`: whether an image contains a cat, and how the answer came about.

use async_graphql::{Context, Enum, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::domain::scan::{ScanRecord, ScanStatus as DomainStatus};
use crate::error::ApiError;
use crate::schema::Caller;

/// Where a scan is in its life. `SUCCEEDED` and `FAILED` are final.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ScanStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl From<DomainStatus> for ScanStatus {
    fn from(status: DomainStatus) -> Self {
        match status {
            DomainStatus::Pending => ScanStatus::Pending,
            DomainStatus::Running => ScanStatus::Running,
            DomainStatus::Succeeded => ScanStatus::Succeeded,
            DomainStatus::Failed => ScanStatus::Failed,
        }
    }
}

/// A label the detector reported.
#[derive(SimpleObject)]
pub struct ScanLabel {
    pub name: String,
    /// 0..1
    pub confidence: f64,
}

/// A cat scan. Its id is the SHA-256 of the scanned bytes: the same content has one scan.
pub struct Scan(pub ScanRecord);

#[Object]
impl Scan {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn status(&self) -> ScanStatus {
        self.0.status.into()
    }

    /// Null until the scan succeeded.
    async fn is_cat(&self) -> Option<bool> {
        self.0.verdict.as_ref().map(|v| v.is_cat)
    }

    /// The detector's confidence that there is a cat (0..1); null until the scan succeeded.
    async fn cat_confidence(&self) -> Option<f64> {
        self.0.verdict.as_ref().map(|v| v.cat_confidence)
    }

    /// The detector's most confident labels, best first.
    async fn labels(&self) -> Vec<ScanLabel> {
        self.0
            .verdict
            .iter()
            .flat_map(|v| &v.labels)
            .map(|l| ScanLabel {
                name: l.name.clone(),
                confidence: l.confidence,
            })
            .collect()
    }

    /// Which detector answered (`offline:efficientnet-lite0`, `rekognition`).
    async fn detector(&self) -> Option<&str> {
        self.0.detector.as_deref()
    }

    async fn requested_at(&self) -> DateTime<Utc> {
        self.0.requested_at
    }

    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }

    /// Why a `FAILED` scan failed: a reason code, a colon, and a message.
    async fn error(&self) -> Option<String> {
        self.0.error.as_ref().map(|failure| failure.public())
    }

    /// How many times a worker took the scan up (more than one after a crash).
    async fn attempts(&self) -> u32 {
        self.0.attempts
    }

    /// Debug data (detector raw output, step timings, this scan's log lines), kept when the
    /// scan was requested with `debug: true`. Needs an admin key (header `x-api-key`). Read
    /// only when asked for: ordinary scan reads never carry it.
    async fn debug(&self, ctx: &Context<'_>) -> Result<Option<async_graphql::Json<serde_json::Value>>> {
        if !ctx.data_opt::<Caller>().is_some_and(Caller::is_admin) {
            return Err(ApiError::Forbidden("debug data needs the admin key".into()).extend());
        }
        let debug = match &self.0.debug {
            Some(debug) => Some(debug.clone()),
            None if self.0.debug_requested => crate::schema::scanner(ctx)?
                .scans()
                .debug_of(&self.0.id)
                .await
                .map_err(|e| ApiError::Internal(e).extend())?,
            None => None,
        };
        Ok(debug.map(|d| async_graphql::Json(serde_json::to_value(d).unwrap_or_default())))
    }
}

use async_graphql::ErrorExtensions;
