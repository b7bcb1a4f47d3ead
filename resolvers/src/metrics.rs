//! What pawql counts: picks, uploads, refusals by code, scans by final status and their
//! latency. Each is a `tracing` event with the target [`TARGET`]; where they go is the
//! binary's choice (on Lambda: CloudWatch's embedded metric format, `src/observability.rs`;
//! locally: nowhere). The domain only says what happened.

/// The target of every metric event.
pub const TARGET: &str = "pawql::metrics";

/// Images handed out by `randomImage(s)` or `/random`.
pub fn picks(count: usize) {
    tracing::info!(target: "pawql::metrics", metric = "Picks", value = count as f64, unit = "Count");
}

/// A new image stored (not a repeated upload of the same bytes).
pub fn upload() {
    tracing::info!(target: "pawql::metrics", metric = "Uploads", value = 1.0, unit = "Count");
}

/// A request answered with an error, by its `extensions.code`.
pub fn refusal(code: &'static str) {
    tracing::info!(target: "pawql::metrics", metric = "Refusals", value = 1.0, unit = "Count", code);
}

/// A scan reached a final status: `SUCCEEDED`, `FAILED`, or `GAVE_UP` (failed because every
/// worker that took it died); `latency` from request to verdict.
pub fn scan_finished(status: &'static str, latency: chrono::TimeDelta) {
    let millis = latency.num_milliseconds().max(0) as f64;
    tracing::info!(target: "pawql::metrics", metric = "ScansFinished", value = 1.0, unit = "Count", status);
    tracing::info!(target: "pawql::metrics", metric = "ScanLatency", value = millis, unit = "Milliseconds");
}
