//! Fault modes: switches that each break one guarantee (negative controls), named and meant as
//! in `reference_services/faults.py`. `OBSCONF_FAULTS=name,name`; all off by default; an
//! unknown name (or one this implementation does not have) stops the service at start-up.

use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The faults this implementation has, with what each breaks.
pub const FAULTS: &[(&str, &str)] = &[
    (
        "no-inject",
        "publish injects no traceparent/tracestate into NATS headers",
    ),
    (
        "consumer-new-root",
        "consumer ignores the incoming context: new root span",
    ),
    (
        "log-no-trace-id",
        "log lines carry empty trace_id and span_id",
    ),
    (
        "log-random-trace-id",
        "log lines carry random trace/span ids, not the span's",
    ),
    (
        "plain-text-logs",
        "the per-request access line is plain text, not JSON",
    ),
    (
        "raw-path-label",
        "metrics use the raw path, not the route template, as endpoint",
    ),
    (
        "no-count-errors",
        "4xx/5xx responses are not counted (counter nor histogram)",
    ),
    (
        "histogram-skips-errors",
        "the duration histogram does not observe 4xx/5xx",
    ),
    (
        "noncumulative-buckets",
        "/metrics shows per-bucket, not cumulative, counts",
    ),
    (
        "garbled-metrics",
        "/metrics ends with a line that is not exposition format",
    ),
    (
        "no-business-count",
        "business and event counters are never incremented",
    ),
    ("drop-logs", "every 3rd log line is counted but not written"),
    (
        "wrong-publish-kind",
        "publish span has kind INTERNAL instead of PRODUCER",
    ),
    (
        "wrong-consume-kind",
        "consume span has kind INTERNAL instead of CONSUMER",
    ),
    (
        "publish-span-not-exported",
        "the span id injected on publish is never exported",
    ),
    (
        "no-messaging-attrs",
        "NATS spans lack messaging.system/destination.name",
    ),
    (
        "old-semconv",
        "HTTP spans use the old attribute names (http.method, ...)",
    ),
    ("no-service-name", "the tracer resource has no service.name"),
    (
        "skewed-span-clock",
        "consume spans start 2 s before their publish parent",
    ),
    (
        "shared-consumer-context",
        "every consume span continues the first message's trace",
    ),
    (
        "consumer-log-before-context",
        "a consumer logs its first line before the message's context is current",
    ),
    ("drop-tracestate", "tracestate is not propagated on publish"),
    ("no-request-id", "X-Request-ID is neither echoed nor logged"),
    (
        "no-request-id-on-publish",
        "published NATS messages carry no X-Request-ID",
    ),
    (
        "no-error-status",
        "5xx responses leave the server span status unset (OK)",
    ),
    (
        "ignore-incoming-context",
        "incoming traceparent/tracestate headers are ignored",
    ),
    (
        "strict-traceparent",
        "a malformed traceparent is answered with 400",
    ),
    (
        "ignore-sampled-flag",
        "unsampled requests (flags 00) are recorded, exported as 01",
    ),
    (
        "duration-in-ms",
        "the duration histogram (named _seconds) observes milliseconds",
    ),
    (
        "error-status-on-4xx",
        "4xx responses set the server span status to ERROR",
    ),
];

static ACTIVE: OnceLock<BTreeSet<String>> = OnceLock::new();

/// Read the enabled faults once, at start-up; an error names the unknown ones and the valid.
pub fn configure(value: &str) -> Result<&'static BTreeSet<String>, String> {
    let names: BTreeSet<String> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !FAULTS.iter().any(|(f, _)| f == n))
        .collect();
    if !unknown.is_empty() {
        let valid: Vec<&str> = FAULTS.iter().map(|(f, _)| *f).collect();
        return Err(format!(
            "unknown fault(s) {} in OBSCONF_FAULTS; valid: {}",
            unknown.join(", "),
            valid.join(", ")
        ));
    }
    Ok(ACTIVE.get_or_init(|| names))
}

/// Whether fault `name` is on; a name that is no fault panics (a typo must not read as off).
pub fn on(name: &str) -> bool {
    assert!(
        FAULTS.iter().any(|(f, _)| *f == name),
        "no such fault: {name}"
    );
    ACTIVE.get().is_some_and(|active| active.contains(name))
}

pub fn active() -> Vec<String> {
    ACTIVE
        .get()
        .map(|a| a.iter().cloned().collect())
        .unwrap_or_default()
}
