//! Logs and traces: the log on stderr (text or JSON lines) and, when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, OpenTelemetry
//! traces exported over OTLP/HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf`, the default, or
//! `http/json`). The SDK reads the other standard variables itself: `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_HEADERS`.
//!
//! A trace holds a span per HTTP request (continuing the caller's `traceparent`), per resolver
//! that reads or writes elsewhere, per DataSync call and per SQL statement. The spans that exist
//! only for traces are DEBUG spans: the log's filter (`RUST_LOG`, info by default) does not take
//! them, so without an exporter nothing subscribes to them and they cost nothing; with one, the
//! trace layer takes them whatever the log level.

use std::time::{Duration, SystemTime};

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The log's filter when `RUST_LOG` is not set.
const DEFAULT_LOG_FILTER: &str = "info,tower_http=warn,aws_config=warn";

/// Where sqlx reports each statement it ran (at DEBUG, with its duration).
const SQL_STATEMENT_TARGET: &str = "sqlx::query";

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// The installed log and, when configured, the trace exporter; [`Telemetry::shutdown`] sends
/// the spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber. Call it outside any async runtime: the OTLP exporter's
    /// blocking HTTP client runs on a thread of its own.
    pub fn init(format: LogFormat) -> anyhow::Result<Self> {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_LOG_FILTER.into());
        let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        let log = match format {
            LogFormat::Text => log.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).boxed(),
            LogFormat::Json => log.json().with_current_span(false).boxed(),
        };
        let provider = tracer_provider()?;
        let (spans, statements) = match &provider {
            Some(provider) => {
                let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
                let ours = Targets::new().with_target(env!("CARGO_CRATE_NAME"), Level::DEBUG);
                let spans = tracing_opentelemetry::layer().with_tracer(tracer.clone()).with_filter(ours);
                let sql = Targets::new().with_target(SQL_STATEMENT_TARGET, Level::DEBUG);
                (Some(spans), Some(SqlStatementSpans { tracer }.with_filter(sql)))
            }
            None => (None, None),
        };
        tracing_subscriber::registry()
            .with(log.with_filter(filter))
            .with(spans)
            .with(statements)
            .try_init()?;
        Ok(Self { provider })
    }

    /// Exports what is buffered and stops the exporter. Blocks: call it after the runtime ends.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(error) = provider.shutdown() {
                eprintln!("exporting the last traces failed: {error}");
            }
        }
    }
}

/// The trace exporter, if an OTLP endpoint is configured.
fn tracer_provider() -> anyhow::Result<Option<SdkTracerProvider>> {
    let configured = |name| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if !configured("OTEL_EXPORTER_OTLP_ENDPOINT") && !configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Ok(None);
    }
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let protocol = match protocol.as_deref() {
        Err(_) | Ok("http/protobuf") => Protocol::HttpBinary,
        Ok("http/json") => Protocol::HttpJson,
        Ok(other) => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported: use http/protobuf (the default) or http/json"
        ),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(protocol).build()?;
    let mut resource =
        Resource::builder().with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(env!("CARGO_PKG_NAME"));
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Some(
        SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build(),
    ))
}

/// Makes `span` continue the trace named by the request's W3C `traceparent` (and
/// `tracestate`), if it has one and traces are exported.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if span.is_disabled() || headers.get("traceparent").is_none() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Fails only when the span was already started, which a fresh request span is not.
    let _ = span.set_parent(parent);
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// Turns sqlx's report of each finished statement into a client span that started the
/// statement's duration earlier, under whatever span ran it. sqlx opens no span of its own;
/// this covers every statement of every module without wrapping each call. A statement run
/// outside any traced operation (a background job's) is left out rather than made a trace of
/// its own.
struct SqlStatementSpans {
    tracer: Tracer,
}

impl<S: Subscriber> Layer<S> for SqlStatementSpans {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let parent = opentelemetry::Context::current();
        if !parent.has_active_span() {
            return;
        }
        let mut statement = StatementReport::default();
        event.record(&mut statement);
        let Some(elapsed) = statement.elapsed else { return };
        // sqlx gives the whole text only when it is longer than its summary.
        let text = if statement.text.trim().is_empty() { statement.summary } else { statement.text };
        let text = text.trim().to_owned();
        let operation = text.split_whitespace().next().unwrap_or("SQL").to_ascii_uppercase();
        let ended = SystemTime::now();
        let mut attributes = vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.operation.name", operation.clone()),
            KeyValue::new("db.query.text", text),
        ];
        if let Some(rows) = statement.rows_returned {
            attributes.push(KeyValue::new("db.response.returned_rows", rows as i64));
        }
        let mut span = self
            .tracer
            .span_builder(operation)
            .with_kind(SpanKind::Client)
            .with_start_time(ended.checked_sub(elapsed).unwrap_or(ended))
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &parent);
        span.end_with_timestamp(ended);
    }
}

#[derive(Default)]
struct StatementReport {
    summary: String,
    text: String,
    rows_returned: Option<u64>,
    elapsed: Option<Duration>,
}

impl Visit for StatementReport {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_owned(),
            "db.statement" => self.text = value.to_owned(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "rows_returned" {
            self.rows_returned = Some(value);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = Duration::try_from_secs_f64(value).ok();
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// A log line that floods under attack (refused requests, calls timed out in a crowd): written
/// at most once per `interval`, saying how many like it were not written since.
pub struct Occasionally {
    interval: std::time::Duration,
    state: std::sync::Mutex<(Option<std::time::Instant>, u64)>,
}

impl Occasionally {
    pub const fn every(interval: std::time::Duration) -> Self {
        Occasionally { interval, state: std::sync::Mutex::new((None, 0)) }
    }

    /// Calls `log` with the number of occurrences left unwritten since the last line, when one
    /// is due; otherwise counts this one.
    pub fn log(&self, log: impl FnOnce(u64)) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (last, skipped) = &mut *state;
        let now = std::time::Instant::now();
        if last.is_some_and(|last| now.duration_since(last) < self.interval) {
            *skipped += 1;
            return;
        }
        let unwritten = std::mem::take(skipped);
        *last = Some(now);
        drop(state);
        log(unwritten);
    }
}

#[cfg(test)]
mod occasionally_tests {
    use super::Occasionally;
    use std::time::Duration;

    #[test]
    fn a_flood_is_one_line_and_the_next_says_how_many_were_left_out() {
        let hourly = Occasionally::every(Duration::from_secs(3_600));
        let mut written = Vec::new();
        for _ in 0..1_000 {
            hourly.log(|unwritten| written.push(unwritten));
        }
        assert_eq!(written, [0], "one line for the flood");
        let always = Occasionally::every(Duration::ZERO);
        always.log(|unwritten| written.push(unwritten));
        always.log(|unwritten| written.push(unwritten));
        assert_eq!(written, [0, 0, 0]);
    }
}
