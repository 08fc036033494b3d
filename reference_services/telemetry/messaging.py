"""NATS trace propagation: PRODUCER spans that inject W3C context into message headers, and
CONSUMER spans that continue the context found there (also on JetStream redelivery)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

from reference_services import faults

tracer = trace.get_tracer("reference_services.messaging")


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
    kind = SpanKind.INTERNAL if faults.enabled("wrong-publish-kind") else SpanKind.PRODUCER
    with tracer.start_as_current_span(
        f"publish {subject}",
        context=ctx,
        kind=kind,
        attributes=_attributes(subject, "publish", "send"),
    ) as span:
        inject_into_headers(headers)
        yield span


@contextmanager
def consume_span(subject: str, headers: Mapping[str, str] | None) -> Iterator[Span]:
    """`process <subject>` CONSUMER span continuing the context carried in `headers`."""
    empty = otel_context.Context()
    if faults.enabled("consumer-new-root") or not headers:
        ctx = empty
    else:
        ctx = propagate.extract(dict(headers), context=empty)
    with tracer.start_as_current_span(
        f"process {subject}",
        context=ctx,
        kind=SpanKind.CONSUMER,
        attributes=_attributes(subject, "process", "process"),
    ) as span:
        yield span
