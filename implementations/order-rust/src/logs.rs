//! JSON logs on stdout: one object per line with ts, level, msg, service, trace_id, span_id,
//! request_id. Every line goes through `write_line`, which counts it (log_records_total).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use serde_json::{Map, Value};

use crate::faults;
use crate::metrics::METRICS;

static SERVICE: OnceLock<String> = OnceLock::new();
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// What the HTTP layer or the consumer knows about the work in progress, carried in the
/// OpenTelemetry `Context` next to the span.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: String,
    pub method: String,
    pub path: String,
}

pub fn init(service: &str) {
    let _ = SERVICE.set(service.to_string());
}

pub fn service() -> &'static str {
    SERVICE.get().map(String::as_str).unwrap_or("order-service")
}

pub fn info(logger: &str, msg: impl Into<String>, extra: Value) {
    log("info", logger, msg.into(), extra)
}

pub fn warning(logger: &str, msg: impl Into<String>, extra: Value) {
    log("warning", logger, msg.into(), extra)
}

pub fn error(logger: &str, msg: impl Into<String>, extra: Value) {
    log("error", logger, msg.into(), extra)
}

/// The request id of the current context ("" outside a request or message).
pub fn current_request_id() -> String {
    Context::map_current(|cx| cx.get::<RequestMeta>().map(|m| m.request_id.clone()))
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn log(level: &str, logger: &str, msg: String, extra: Value) {
    let (trace_id, span_id) = Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        if faults::on("log-random-trace-id") {
            (
                hex(&rand::random::<[u8; 16]>()),
                hex(&rand::random::<[u8; 8]>()),
            )
        } else if sc.is_valid() && !faults::on("log-no-trace-id") {
            (sc.trace_id().to_string(), sc.span_id().to_string())
        } else {
            (String::new(), String::new())
        }
    });
    if faults::on("plain-text-logs") && logger == "order.http" {
        write_line(
            level,
            &format!("{} {} {msg}", level.to_uppercase(), service()),
        );
        return;
    }
    let mut line = Map::new();
    let ts = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string();
    line.insert("ts".into(), ts.into());
    line.insert("level".into(), level.into());
    line.insert("msg".into(), msg.into());
    line.insert("service".into(), service().into());
    line.insert("trace_id".into(), trace_id.into());
    line.insert("span_id".into(), span_id.into());
    line.insert("request_id".into(), current_request_id().into());
    line.insert("logger".into(), logger.into());
    if let Value::Object(fields) = extra {
        for (key, value) in fields {
            line.entry(key).or_insert(value);
        }
    }
    write_line(level, &Value::Object(line).to_string());
}

/// Count and write one line to stdout (`drop-logs`: every third is counted, not written).
pub fn write_line(level: &str, text: &str) {
    METRICS.log_records.with_label_values(&[level]).inc();
    let n = WRITTEN.fetch_add(1, Ordering::Relaxed) + 1;
    if faults::on("drop-logs") && n.is_multiple_of(3) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{text}\n").as_bytes());
    let _ = out.flush();
}

/// Panics become one counted JSON error line (the default hook writes uncounted stderr).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        error(
            "order.panic",
            format!("panic: {info}"),
            serde_json::json!({"location": location}),
        );
    }));
}
