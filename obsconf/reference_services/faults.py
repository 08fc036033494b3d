"""Fault modes: switches that each break exactly one guarantee (negative controls for the suite).

Enabled with `OBSCONF_FAULTS=name,name`; all are off by default. An unknown name stops the
service at start-up with a message listing the valid ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

FAULTS_ENV = "OBSCONF_FAULTS"


@dataclass(frozen=True)
class Fault:
    name: str
    description: str


# Which guarantees each fault breaks is recorded once, in conformance/catalog.yaml.
FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("no-inject", "publish injects no traceparent/tracestate into NATS headers"),
        Fault("consumer-new-root", "consumer ignores the incoming context: new root span"),
        Fault("log-no-trace-id", "log lines carry empty trace_id and span_id"),
        Fault("log-random-trace-id", "log lines carry random trace/span ids, not the span's"),
        Fault("plain-text-logs", "the per-request access line is plain text, not JSON"),
        Fault(
            "plain-text-error-logs",
            "ERROR lines (5xx, dependency down) are plain text, not JSON: only a sweep over the "
            "whole run, error paths included, sees them",
        ),
        Fault("raw-path-label", "metrics use the raw path, not the route template, as endpoint"),
        Fault("no-count-errors", "4xx/5xx responses are not counted (counter nor histogram)"),
        Fault("histogram-skips-errors", "the duration histogram does not observe 4xx/5xx"),
        Fault("noncumulative-buckets", "/metrics shows per-bucket, not cumulative, counts"),
        Fault("garbled-metrics", "/metrics ends with a line that is not exposition format"),
        Fault("no-business-count", "business and event counters are never incremented"),
        Fault("drop-logs", "every 3rd log line is counted but not written"),
        Fault("wrong-publish-kind", "publish span has kind INTERNAL instead of PRODUCER"),
        Fault("wrong-consume-kind", "consume span has kind INTERNAL instead of CONSUMER"),
        Fault("publish-span-not-exported", "the span id injected on publish is never exported"),
        Fault("no-messaging-attrs", "NATS spans lack messaging.system/destination.name"),
        Fault("old-semconv", "HTTP spans use the old attribute names (http.method, ...)"),
        Fault("no-service-name", "the tracer resource has no service.name"),
        Fault("skewed-span-clock", "consume spans start 2 s before their publish parent"),
        Fault("shared-consumer-context", "every consume span continues the first message's trace"),
        Fault(
            "consumer-log-before-context",
            "a consumer logs its first line before the message's context is current",
        ),
        Fault("drop-tracestate", "tracestate is not propagated on publish"),
        Fault(
            "consumer-drops-tracestate",
            "a consumer continues the message's traceparent but not its tracestate",
        ),
        Fault("no-request-id", "X-Request-ID is neither echoed nor logged"),
        Fault("no-request-id-on-publish", "published NATS messages carry no X-Request-ID"),
        Fault("no-error-status", "5xx responses leave the server span status unset (OK)"),
        Fault("no-error-type", "spans are exported without their error.type attribute"),
        Fault("ignore-incoming-context", "incoming traceparent/tracestate headers are ignored"),
        Fault("strict-traceparent", "a malformed traceparent is answered with 400"),
        Fault(
            "lenient-traceparent",
            "an invalid or duplicated traceparent is continued (any version or case, first field)",
        ),
        Fault("first-tracestate-only", "only the first of several tracestate fields is read"),
        Fault("lenient-tracestate", "an incoming tracestate is passed on as it came, unvalidated"),
        Fault("ignore-sampled-flag", "unsampled requests (flags 00) are recorded, exported as 01"),
        Fault("duration-in-ms", "the duration histogram (named _seconds) observes milliseconds"),
        Fault("count-before-commit", "users_created_total rises before the insert: a 409 counts"),
        Fault("error-status-on-4xx", "4xx responses set the server span status to ERROR"),
        Fault("late-span-export", "every span reaches the exporter 6 s after it ended"),
        Fault(
            "inherit-connection-context",
            "after a body > 64 KiB, later requests on the connection join that request's trace",
        ),
        Fault(
            "delivery-cap",
            "consumers give up after 2 deliveries: an event is dropped if its dependency is down",
        ),
        Fault("no-outbox-relay", "an event whose publish failed (NATS down) is never sent later"),
        Fault("outage-500", "a dependency that does not answer gives 500, not 503"),
        Fault(
            "no-input-hardening",
            "NUL, lone surrogates and out-of-range integers reach storage; bodies are unbounded",
        ),
    )
}


class UnknownFault(ValueError):
    """OBSCONF_FAULTS named a fault that does not exist."""


def parse_faults(value: str | None) -> frozenset[str]:
    """The fault names in a comma-separated list; raises UnknownFault naming the valid ones."""
    names = {part.strip() for part in (value or "").split(",") if part.strip()}
    unknown = sorted(names - FAULTS.keys())
    if unknown:
        raise UnknownFault(
            f"unknown fault(s) {', '.join(unknown)} in {FAULTS_ENV}; "
            f"valid: {', '.join(sorted(FAULTS))}"
        )
    return frozenset(names)


_active: frozenset[str] = frozenset()


def configure(value: str | None = None) -> frozenset[str]:
    """Read the enabled faults (from `value` or the environment) once, at start-up."""
    global _active
    _active = parse_faults(os.environ.get(FAULTS_ENV) if value is None else value)
    return _active


def active() -> frozenset[str]:
    """The faults switched on in this process."""
    return _active


def enabled(name: str) -> bool:
    """Whether fault `name` is switched on in this process; a name that is no fault raises
    UnknownFault (a typo must not read as "off", with or without `python -O`)."""
    if name not in FAULTS:
        raise UnknownFault(f"no such fault: {name!r}; valid: {', '.join(sorted(FAULTS))}")
    return name in _active
