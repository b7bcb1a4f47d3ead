//! Logs and metrics, as each place wants them.
//!
//! - Locally: readable log lines on stderr (stdout is the CLI's output, for pipes).
//! - On Lambda: one JSON object per log line, carrying the invocation's `requestId` (from the
//!   span `lambda_runtime` opens per invocation), so CloudWatch Logs Insights can filter one
//!   request; and metrics in CloudWatch's embedded metric format (EMF): the domain's metric
//!   events ([`resolvers::metrics`]) become JSON lines on stdout that CloudWatch turns into
//!   metrics in namespace [`NAMESPACE`] with no agent and no API call: picks, uploads,
//!   refusals by code, scans by final status, scan latency. The alarms in `serverless.yml`
//!   watch them.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The CloudWatch namespace of pawql's metrics.
pub const NAMESPACE: &str = "pawql";

fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"))
}

/// Logging for the local server and the CLI: readable lines on stderr; metric events dropped.
pub fn init_local() {
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(env_filter())
                .with_filter(no_metrics()),
        )
        .init();
}

/// Everything but metric events. A `Targets` filter decides per call site once, so where
/// nothing records metrics (the local server) a pick's metric event costs nothing after the
/// first; a closure filter would be asked at every event.
fn no_metrics() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target(resolvers::metrics::TARGET, LevelFilter::OFF)
}

/// Logging on Lambda: JSON lines with the request id on stderr, EMF metrics of `stage` on stdout.
pub fn init_lambda(stage: &str) {
    tracing_subscriber::registry()
        .with(json_log_layer(std::io::stderr).with_filter(env_filter()))
        .with(EmfLayer::new(stage, Arc::new(Mutex::new(std::io::stdout()))))
        .init();
}

/// One JSON object per log line, with the fields of the innermost span (`lambda_runtime`'s
/// per-invocation span carries `requestId`); metric events are left to the EMF layer.
pub fn json_log_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
        .with_filter(no_metrics())
}

/// Turns metric events into EMF lines written to `out`.
pub struct EmfLayer<W> {
    stage: String,
    out: Arc<Mutex<W>>,
}

impl<W: Write> EmfLayer<W> {
    pub fn new(stage: &str, out: Arc<Mutex<W>>) -> EmfLayer<W> {
        EmfLayer {
            stage: stage.to_owned(),
            out,
        }
    }

    /// The EMF line of one metric event.
    fn line(&self, metric: &MetricEvent) -> serde_json::Value {
        let timestamp = chrono::Utc::now().timestamp_millis();
        let mut dimensions = vec!["Stage"];
        let mut line = serde_json::json!({ "Stage": self.stage, metric.name.as_str(): metric.value });
        // A metric's own dimension (a refusal's code, a scan's status) rides beside the stage.
        for (name, value) in [("Code", &metric.code), ("Status", &metric.status)] {
            if let Some(value) = value {
                dimensions.push(name);
                line[name] = serde_json::json!(value);
            }
        }
        line["_aws"] = serde_json::json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": [{ "Name": metric.name, "Unit": metric.unit }],
            }],
        });
        line
    }
}

impl<S, W> Layer<S> for EmfLayer<W>
where
    S: tracing::Subscriber,
    W: Write + Send + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != resolvers::metrics::TARGET {
            return;
        }
        let mut metric = MetricEvent::default();
        event.record(&mut metric);
        if metric.name.is_empty() {
            return;
        }
        let line = self.line(&metric);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // One write per line, so lines from concurrent invocations never interleave.
        let _ = out.write_all(format!("{line}\n").as_bytes());
    }
}

/// The fields of a metric event.
#[derive(Default)]
struct MetricEvent {
    name: String,
    value: f64,
    unit: String,
    code: Option<String>,
    status: Option<String>,
}

impl Visit for MetricEvent {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "value" {
            self.value = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "metric" => self.name = value.to_owned(),
            "unit" => self.unit = value.to_owned(),
            "code" => self.code = Some(value.to_owned()),
            "status" => self.status = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, format!("{value:?}").trim_matches('"'));
    }
}

/// The EMF lines written by a closure's metric events, for tests: `(lines, result)`.
#[cfg(test)]
fn capture<T>(work: impl FnOnce() -> T) -> (Vec<serde_json::Value>, T) {
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    let subscriber = tracing_subscriber::registry().with(EmfLayer::new("test", buffer.clone()));
    let result = tracing::subscriber::with_default(subscriber, work);
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap_or_default();
    let lines = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    (lines, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer into a shared buffer, for the log layer.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lambda_logs_are_json_lines_carrying_the_request_id() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(json_log_layer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // What lambda_runtime opens around each invocation.
            let span = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
            );
            let _entered = span.enter();
            tracing::warn!(scan = "abc", "scan failed");
            resolvers::metrics::picks(2);
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 1, "one line per event, metrics excluded: {text}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["fields"]["message"], "scan failed");
        assert_eq!(lines[0]["fields"]["scan"], "abc");
        assert_eq!(lines[0]["span"]["requestId"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    }

    #[test]
    fn metric_events_become_emf_lines_cloudwatch_understands() {
        let (lines, ()) = capture(|| {
            resolvers::metrics::picks(3);
            resolvers::metrics::refusal("BAD_USER_INPUT");
            resolvers::metrics::scan_finished("GAVE_UP", chrono::TimeDelta::milliseconds(2500));
            tracing::info!("an ordinary log line is not a metric");
        });
        assert_eq!(lines.len(), 4, "{lines:?}");
        let picks = &lines[0];
        assert_eq!(picks["Picks"], 3.0);
        assert_eq!(picks["Stage"], "test");
        let directive = &picks["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], serde_json::json!([["Stage"]]));
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{ "Name": "Picks", "Unit": "Count" }])
        );
        assert!(picks["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        let refusal = &lines[1];
        assert_eq!(
            (refusal["Refusals"].as_f64(), refusal["Code"].as_str()),
            (Some(1.0), Some("BAD_USER_INPUT"))
        );
        assert_eq!(
            refusal["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Stage", "Code"]])
        );
        assert_eq!(lines[2]["Status"], "GAVE_UP");
        assert_eq!(lines[2]["ScansFinished"], 1.0);
        assert_eq!(lines[3]["ScanLatency"], 2500.0);
        assert_eq!(
            lines[3]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
    }
}
