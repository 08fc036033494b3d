"""NATS trace propagation: PRODUCER spans that inject W3C context into message headers, and
CONSUMER spans that continue the context found there (also on JetStream redelivery).

Two consumer relations are supported (`OBSCONF_CONSUMER_RELATION`): `parent` (default) makes
the consume span a child of the publish span; `link` starts a new trace whose consume span
links to the publish span, the pattern the OpenTelemetry messaging conventions describe.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

from obsconf.reference_services import faults

tracer = trace.get_tracer("reference_services.messaging")
CONSUMER_RELATIONS = ("parent", "link")
_consumer_relation = "parent"


def set_consumer_relation(relation: str) -> None:
    """`parent` or `link` (see the module docstring); read once at start-up."""
    global _consumer_relation
    if relation not in CONSUMER_RELATIONS:
        raise ValueError(
            f"OBSCONF_CONSUMER_RELATION must be one of {', '.join(CONSUMER_RELATIONS)}, "
            f"not {relation!r}"
        )
    _consumer_relation = relation


def carrier_of_current_context() -> dict[str, str]:
    """The current trace context as W3C headers (stored with outbox rows, unaffected by faults)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def inject_into_headers(headers: dict[str, str]) -> None:
    """Write traceparent/tracestate (and baggage) of the current span into message headers."""
    if faults.enabled("no-inject"):
        return
    propagate.inject(headers)
    if faults.enabled("drop-tracestate"):
        headers.pop("tracestate", None)


def _attributes(subject: str, operation: str, operation_type: str) -> dict[str, str]:
    if faults.enabled("no-messaging-attrs"):
        return {"messaging.operation": operation}
    return {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation": operation,
        "messaging.operation.type": operation_type,
    }


@contextmanager
def publish_span(
    subject: str, headers: dict[str, str], parent: Mapping[str, str] | None = None
) -> Iterator[Span]:
    """`publish <subject>` PRODUCER span (child of `parent` headers if given, else current
    context); the span's context is injected into `headers` before the body runs."""
    ctx = propagate.extract(dict(parent), context=otel_context.Context()) if parent else None
    if faults.enabled("publish-span-not-exported"):
        yield from _unexported_publish(headers, ctx)
        return
    kind = SpanKind.INTERNAL if faults.enabled("wrong-publish-kind") else SpanKind.PRODUCER
    with tracer.start_as_current_span(
        f"publish {subject}",
        context=ctx,
        kind=kind,
        attributes=_attributes(subject, "publish", "send"),
    ) as span:
        inject_into_headers(headers)
        yield span


def _unexported_publish(
    headers: dict[str, str], ctx: otel_context.Context | None
) -> Iterator[Span]:
    """The `publish-span-not-exported` fault: inject a span id that never reaches the store."""
    parent = trace.get_current_span(ctx).get_span_context()
    ghost = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=parent.trace_id if parent.is_valid else secrets.randbits(128),
            span_id=secrets.randbits(64),
            is_remote=False,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
            trace_state=parent.trace_state,
        )
    )
    with trace.use_span(ghost):
        inject_into_headers(headers)
        yield ghost


_first_consumed: otel_context.Context | None = None


@contextmanager
def consume_span(subject: str, headers: Mapping[str, str] | None) -> Iterator[Span]:
    """`process <subject>` CONSUMER span continuing (or, in link mode, linking to) the context
    carried in `headers`."""
    global _first_consumed
    empty = otel_context.Context()
    if faults.enabled("consumer-new-root") or not headers:
        ctx = empty
    else:
        carrier = dict(headers)
        if faults.enabled("consumer-drops-tracestate"):
            carrier.pop("tracestate", None)
        ctx = propagate.extract(carrier, context=empty)
    if faults.enabled("shared-consumer-context"):
        _first_consumed = _first_consumed or ctx
        ctx = _first_consumed
    links: list[trace.Link] = []
    if _consumer_relation == "link":
        producer = trace.get_current_span(ctx).get_span_context()
        links = [trace.Link(producer)] if producer.is_valid else []
        ctx = empty  # a new trace, with a sampling decision of its own
    start = time.time_ns() - 2_000_000_000 if faults.enabled("skewed-span-clock") else None
    with tracer.start_as_current_span(
        f"process {subject}",
        context=ctx,
        kind=SpanKind.INTERNAL if faults.enabled("wrong-consume-kind") else SpanKind.CONSUMER,
        attributes=_attributes(subject, "process", "process"),
        links=links,
        start_time=start,
    ) as span:
        yield span
