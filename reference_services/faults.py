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
    family: str  # guarantee family: MET, LOG, TRC, PROP
    breaks: tuple[str, ...]  # guarantee ids this fault must make fail


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "no-inject",
            "publish injects no traceparent/tracestate into NATS headers",
            "TRC",
            ("TRC-PUBLISH-INJECTS-CONTEXT",),
        ),
        Fault(
            "consumer-new-root",
            "consumer ignores the incoming context: new root span",
            "TRC",
            ("TRC-CONSUMER-CONTINUES-TRACE",),
        ),
        Fault(
            "log-no-trace-id",
            "log lines carry empty trace_id and span_id",
            "LOG",
            ("LOG-TRACE-CORRELATION",),
        ),
        Fault(
            "raw-path-label",
            "metrics use the raw path, not the route template, as endpoint",
            "MET",
            ("MET-ROUTE-TEMPLATE",),
        ),
        Fault(
            "no-count-errors",
            "4xx/5xx responses are not counted (counter nor histogram)",
            "MET",
            ("MET-COUNT-EXACT",),
        ),
        Fault("drop-logs", "every 3rd log line is not written", "LOG", ("LOG-NO-LOSS",)),
        Fault(
            "wrong-publish-kind",
            "publish span has kind INTERNAL instead of PRODUCER",
            "TRC",
            ("TRC-MESSAGING-SPAN-KINDS",),
        ),
        Fault(
            "drop-tracestate",
            "tracestate is not propagated on publish",
            "PROP",
            ("PROP-TRACESTATE",),
        ),
        Fault(
            "no-request-id",
            "X-Request-ID is neither echoed nor logged",
            "PROP",
            ("PROP-REQUEST-ID",),
        ),
        Fault(
            "no-error-status",
            "5xx responses leave the server span status unset (OK)",
            "TRC",
            ("TRC-ERROR-STATUS",),
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
    """Whether fault `name` is switched on in this process."""
    assert name in FAULTS, f"no such fault: {name}"
    return name in _active
