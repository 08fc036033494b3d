"""`obsconf trace`: a real trace from the trace store, printed as a tree with its gaps named."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from obsconf.conformance.trace_command import explain_trace
from obsconf.reference_services.launcher import ReferenceServices
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack
REFERENCE = Path(__file__).resolve().parent.parent / "targets" / "reference.yaml"


def _obsconf_trace(trace_id: str, traces_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "obsconf.conformance.cli",
            "trace",
            trace_id,
            f"--traces={traces_url}",
            f"--target={REFERENCE}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unknown_trace_says_so_with_the_url_asked(endpoints: Endpoints) -> None:
    missing = secrets.token_hex(16)
    proc = _obsconf_trace(missing, endpoints.traces)
    assert proc.returncode == 2
    assert f"trace {missing} not found: asked {endpoints.traces}/api/v3/traces/{missing}" in (
        proc.stdout
    )


def test_a_complete_flow_has_no_gap(
    endpoints: Endpoints, reference_services: ReferenceServices
) -> None:
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    email = f"trace-{secrets.token_hex(4)}@example.com"
    answer = httpx.post(
        reference_services.urls["user-service"] + "/api/users",
        json={"name": "T", "email": email},
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 201
    poll(
        lambda: explain_trace(trace_id, endpoints.traces, _reference())[0],
        until=lambda s: s == 0,
        timeout=20,
        describe=f"trace {trace_id} complete through inventory-service",
    )
    proc = _obsconf_trace(trace_id, endpoints.traces)
    assert proc.returncode == 0, proc.stdout
    assert "inventory-service: process order.created [CONSUMER]" in proc.stdout


def test_a_consumer_whose_parent_was_never_exported_is_named(endpoints: Endpoints) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "order-service"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoints.otlp}/v1/traces"))
    )
    tracer = provider.get_tracer("obsconf.test")
    ghost = trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=secrets.randbits(128),
            span_id=secrets.randbits(64),
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )
    context = trace.set_span_in_context(ghost)
    with tracer.start_as_current_span(
        "process user.created",
        context=context,
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "nats", "messaging.destination.name": "user.created"},
    ):
        pass
    provider.shutdown()
    trace_id = format(ghost.get_span_context().trace_id, "032x")
    poll(
        lambda: explain_trace(trace_id, endpoints.traces, None)[0],
        until=lambda s: s != 2,
        timeout=20,
        describe=f"trace {trace_id} in the trace store",
    )
    proc = _obsconf_trace(trace_id, endpoints.traces)
    assert proc.returncode == 1
    assert "GAP" in proc.stdout and "orphan" in proc.stdout.lower()
    assert "likely cause:" in proc.stdout


def _reference():
    from obsconf.conformance.target import load_target

    return load_target(REFERENCE)
