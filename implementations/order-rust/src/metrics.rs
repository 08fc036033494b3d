//! Prometheus metrics: request counter and duration histogram by route template, business,
//! event and log-record counters, `process_start_time_seconds`.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::faults;

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub orders_created: IntCounter,
    pub welcome_orders_created: IntCounter,
    pub events_published: IntCounterVec,
    pub events_consumed: IntCounterVec,
    pub log_records: IntCounterVec,
}

/// The labelled families, announced even before their first series.
const DECLARED: &[(&str, &str, &str)] = &[
    (
        "http_requests_total",
        "HTTP requests served, by route template (endpoint) and status code",
        "counter",
    ),
    (
        "http_request_duration_seconds",
        "HTTP request duration, by route template (endpoint) and status code",
        "histogram",
    ),
    (
        "events_published_total",
        "Events acknowledged by JetStream",
        "counter",
    ),
    (
        "events_consumed_total",
        "Events processed and acked",
        "counter",
    ),
    (
        "log_records_total",
        "Log lines the service wrote to stdout",
        "counter",
    ),
];

const HTTP_LABELS: &[&str] = &["service", "method", "endpoint", "status"];
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("counter");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("counter");
            registry.register(Box::new(c.clone())).expect("register");
            c
        };
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request duration, by route template (endpoint) and status code",
            )
            .buckets(BUCKETS.to_vec()),
            HTTP_LABELS,
        )
        .expect("histogram");
        registry
            .register(Box::new(duration.clone()))
            .expect("register");
        let start = Gauge::new(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        )
        .expect("gauge");
        start.set(process_start_seconds());
        registry.register(Box::new(start)).expect("register");
        Metrics {
            requests: counter_vec(
                "http_requests_total",
                "HTTP requests served, by route template (endpoint) and status code",
                HTTP_LABELS,
            ),
            duration,
            orders_created: counter(
                "orders_created_total",
                "Orders created (API and welcome orders)",
            ),
            welcome_orders_created: counter(
                "welcome_orders_created_total",
                "Welcome orders created",
            ),
            events_published: counter_vec(
                "events_published_total",
                "Events acknowledged by JetStream",
                &["subject"],
            ),
            events_consumed: counter_vec(
                "events_consumed_total",
                "Events processed and acked",
                &["subject"],
            ),
            log_records: counter_vec(
                "log_records_total",
                "Log lines the service wrote to stdout",
                &["level"],
            ),
            registry,
        }
    }
}

/// The process's start time from /proc (boot time + start ticks), else now.
fn process_start_seconds() -> f64 {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Option<f64> = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(19))
        .and_then(|v| v.parse().ok());
    let btime: Option<f64> = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok());
    match (ticks, btime) {
        (Some(ticks), Some(btime)) => btime + ticks / 100.0, // USER_HZ is 100 on Linux
        _ => now(),
    }
}

/// +1 on a business counter (the `no-business-count` fault skips it).
pub fn count_business(counter: &IntCounter) {
    if !faults::on("no-business-count") {
        counter.inc();
    }
}

/// +1 on an event counter for `subject` (the `no-business-count` fault skips it).
pub fn count_event(counter: &IntCounterVec, subject: &str) {
    if !faults::on("no-business-count") {
        counter.with_label_values(&[subject]).inc();
    }
}

/// Count one request and observe its duration (`duration-in-ms` observes milliseconds).
pub fn record_request(service: &str, method: &str, endpoint: &str, status: u16, seconds: f64) {
    let code = status.to_string();
    let labels = [service, method, endpoint, code.as_str()];
    METRICS.requests.with_label_values(&labels).inc();
    if !(status >= 400 && faults::on("histogram-skips-errors")) {
        let scale = if faults::on("duration-in-ms") {
            1000.0
        } else {
            1.0
        };
        METRICS
            .duration
            .with_label_values(&labels)
            .observe(seconds * scale);
    }
}

/// The /metrics body; `garbled-metrics` appends a line that is not exposition format.
pub fn exposition() -> String {
    let families = METRICS.registry.gather();
    let mut buffer = Vec::new();
    TextEncoder::new()
        .encode(&families, &mut buffer)
        .expect("encode");
    let mut text = String::from_utf8(buffer).expect("utf-8");
    // A labelled family without series yet is left out by the encoder; announce it anyway, so
    // /metrics names every family from the start (as other clients do).
    for (name, help, kind) in DECLARED {
        if !families.iter().any(|f| f.name() == *name) {
            text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        }
    }
    if faults::on("noncumulative-buckets") {
        text = decumulate(&text);
    }
    if faults::on("garbled-metrics") {
        text.push_str("this line is not prometheus text format {\n");
    }
    text
}

/// Histogram buckets rewritten to per-bucket counts (the `noncumulative-buckets` fault).
fn decumulate(text: &str) -> String {
    let mut previous: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    let mut out = String::new();
    for line in text.lines() {
        let bucket = line.split_once("_bucket{").zip(line.rsplit_once(' '));
        match bucket {
            Some(((name, _), (series, value))) if !line.starts_with('#') => {
                let key = format!("{name}{}", series.split("le=").next().unwrap_or(series));
                let value: f64 = value.parse().unwrap_or(0.0);
                let before = previous.insert(key, value).unwrap_or(0.0);
                out.push_str(&format!("{series} {}\n", value - before));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn decumulate_gives_per_bucket_counts() {
        let text = "# TYPE h histogram\nh_bucket{a=\"x\",le=\"1\"} 2\nh_bucket{a=\"x\",le=\"+Inf\"} 5\nh_count{a=\"x\"} 5\n";
        let out = super::decumulate(text);
        assert!(out.contains("h_bucket{a=\"x\",le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{a=\"x\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("h_count{a=\"x\"} 5\n"), "{out}");
    }
}
