"""Tracer provider (OTLP/HTTP export), W3C propagators and library instrumentation."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import requests
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.propagators import (
    TraceResponsePropagator,
    set_global_response_propagator,
)
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TraceState
from opentelemetry.util.types import Attributes
from sqlalchemy.ext.asyncio import AsyncEngine

from obsconf.reference_services import faults
from obsconf.reference_services.telemetry.propagation import TraceContextPropagator

# Health probes and scrapes are not traced: they would bury the traces tests look for.
UNTRACED_URLS = "/health,/metrics"

# The batch processor reads OTEL_BSP_* (schedule delay, batch and queue sizes); a start command
# sets OTEL_BSP_SCHEDULE_DELAY from the target's capabilities.span_flush_interval. Unset: 200 ms.
DEFAULT_EXPORT_EVERY_MS = "200"
LATE_EXPORT_S = 6.0  # `late-span-export`: inside the suite's waits, past LOAD-FRESHNESS


class LateSpans(SpanProcessor):
    """The `late-span-export` fault: each ended span reaches `inner` `delay_s` later."""

    def __init__(self, inner: SpanProcessor, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        timer = threading.Timer(self.delay_s, self.inner.on_end, (span,))
        timer.daemon = True
        timer.start()

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


_provider: TracerProvider | None = None


class WithoutErrorType(SpanExporter):
    """The `no-error-type` fault: spans leave without their `error.type` attribute."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_without_error_type(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _without_error_type(span: ReadableSpan) -> ReadableSpan:
    if span.attributes is None or "error.type" not in span.attributes:
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={k: v for k, v in span.attributes.items() if k != "error.type"},
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def setup_tracing(service_name: str, otlp_endpoint: str, enabled: bool = True) -> None:
    """Install the W3C propagators and, when enabled, an OTLP-exporting tracer provider."""
    global _provider
    propagate.set_global_textmap(
        CompositePropagator([TraceContextPropagator(), W3CBaggagePropagator()])
    )
    if not enabled:
        return
    # Read when the instrumentations initialise: spans then carry the stable HTTP names
    # (http.request.method, http.route, http.response.status_code); `old-semconv` keeps the old.
    if faults.enabled("old-semconv"):
        os.environ.pop("OTEL_SEMCONV_STABILITY_OPT_IN", None)
    else:
        os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    # The export thread shares the GIL with the event loop: a session that skips the proxy
    # and .netrc look-ups `requests` makes per POST (a fifth of the exporter's time, profiled).
    session = requests.Session()
    session.trust_env = False
    exporter: SpanExporter = OTLPSpanExporter(
        endpoint=otlp_endpoint.rstrip("/") + "/v1/traces", timeout=5, session=session
    )
    if faults.enabled("no-error-type"):
        exporter = WithoutErrorType(exporter)
    name = {} if faults.enabled("no-service-name") else {SERVICE_NAME: service_name}
    _provider = TracerProvider(resource=Resource.create(name), sampler=sampler())
    os.environ.setdefault("OTEL_BSP_SCHEDULE_DELAY", DEFAULT_EXPORT_EVERY_MS)
    batch = BatchSpanProcessor(exporter)
    late = faults.enabled("late-span-export")
    _provider.add_span_processor(LateSpans(batch, LATE_EXPORT_S) if late else batch)
    trace.set_tracer_provider(_provider)
    PymongoInstrumentor().instrument(tracer_provider=_provider)


class DropUnread(Sampler):
    """Drops the CLIENT spans named in `names` and lets `delegate` decide every other span.

    SQLAlchemy's instrumentation opens a `connect` span around each pool checkout: two per
    `POST /api/users`, nothing inside them (the statements are siblings), read by nobody.
    Dropping them at the sampler costs one name test instead of a span and its export."""

    def __init__(self, delegate: Sampler, names: frozenset[str] = frozenset({"connect"})) -> None:
        self.delegate = delegate
        self.names = names

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT and name in self.names:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"DropUnread{{{','.join(sorted(self.names))}}}+{self.delegate.get_description()}"


def sampler() -> Sampler:
    """The incoming traceparent's sampled flag decides (a new trace is always sampled);
    `ignore-sampled-flag` records every request; the standard OTEL_TRACES_SAMPLER, when set,
    chooses instead (the bench sets `always_off`). Pool `connect` spans are never recorded."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        # The SDK reads the variable (and OTEL_TRACES_SAMPLER_ARG) when given no sampler.
        return DropUnread(TracerProvider(shutdown_on_exit=False).sampler)
    base = ALWAYS_ON if faults.enabled("ignore-sampled-flag") else ParentBased(ALWAYS_ON)
    return DropUnread(base)


def instrument_app(app: FastAPI) -> None:
    """Server spans for every route but the untraced ones; no per-ASGI-message spans.

    Responses carry W3C `traceresponse` (Trace Context Level 2), so a caller learns the trace
    its request landed in even when the service did not continue the caller's traceparent."""
    if _provider is None:
        return
    set_global_response_propagator(TraceResponsePropagator())
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls=UNTRACED_URLS,
        exclude_spans=["receive", "send"],
    )


def mark_client_error(status: int) -> None:
    """The `error-status-on-4xx` fault: mark the current (server) span ERROR on a 4xx response.

    Without it the instrumentation leaves a 4xx server span's status unset, as the HTTP
    semantic conventions require (only 5xx is a server error)."""
    if 400 <= status < 500 and faults.enabled("error-status-on-4xx"):
        trace.get_current_span().set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per SQL statement on this engine."""
    if _provider is None:
        return
    SQLAlchemyInstrumentor().instrument(
        engine=engine.sync_engine,
        tracer_provider=_provider,
        enable_commenter=False,
        skip_dep_check=True,  # 0.66b1 declares sqlalchemy < 2.1; it works with 2.1
    )


def shutdown_tracing() -> None:
    """Flush pending spans (called on service shutdown)."""
    if _provider is not None:
        _provider.shutdown()
