"""Tracer provider (OTLP/HTTP export), W3C propagators and library instrumentation."""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
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
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler
from opentelemetry.trace import Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine

from obsconf.reference_services import faults
from obsconf.reference_services.telemetry.propagation import TraceContextPropagator

# Health probes and scrapes are not traced: they would bury the traces tests look for.
UNTRACED_URLS = "/health,/metrics"

_provider: TracerProvider | None = None


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
    exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces", timeout=5)
    name = {} if faults.enabled("no-service-name") else {SERVICE_NAME: service_name}
    _provider = TracerProvider(resource=Resource.create(name), sampler=sampler())
    _provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    trace.set_tracer_provider(_provider)
    PymongoInstrumentor().instrument(tracer_provider=_provider)


def sampler() -> Sampler:
    """The incoming traceparent's sampled flag decides (a new trace is always sampled);
    `ignore-sampled-flag` records every request."""
    return ALWAYS_ON if faults.enabled("ignore-sampled-flag") else ParentBased(ALWAYS_ON)


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
