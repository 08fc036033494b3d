"""The stack's components, exercised for real: each stores and returns what it was given."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from obsconf.conformance.clients.logs import LogsClient
from obsconf.conformance.clients.prometheus import PrometheusClient
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.local import register_scrape_target
from obsconf.stack.ports import free_port
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module", params=["session_stack", "container_stack"])
def endpoints(request: pytest.FixtureRequest) -> Endpoints:
    """Every test here runs on the session's stack (local by default) and on containers:
    the suite must not tell the backends apart."""
    return request.getfixturevalue(request.param).endpoints


def test_prometheus_scrapes_a_metrics_endpoint(endpoints: Endpoints) -> None:
    registry = CollectorRegistry()
    value = secrets.randbelow(10_000) + 1
    Gauge("obsconf_stack_probe", "probe gauge", registry=registry).set(value)
    port = free_port()
    server, thread = start_http_server(port, addr=endpoints.service_host, registry=registry)
    try:
        address = f"{endpoints.scrape_host}:{port}"
        register_scrape_target(Path(endpoints.scrape_dir), "stack-probe", address)
        prom = PrometheusClient(endpoints.prometheus)
        seen = poll(
            lambda: prom.value('obsconf_stack_probe{job="stack-probe"}'),
            until=lambda v: v == value,
            timeout=20,
            describe=f"obsconf_stack_probe == {value} in Prometheus",
        )
        assert seen == value
        health = {t["labels"]["job"]: t["health"] for t in prom.targets()}
        assert health.get("stack-probe") == "up"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_json_log_line_reaches_the_log_store_and_is_found_by_trace_id(
    endpoints: Endpoints,
) -> None:
    trace_id = secrets.token_hex(16)
    log_file = Path(endpoints.log_dir) / "stack-test.log"
    with log_file.open("a") as out:
        out.write(json.dumps({"level": "info", "msg": "other", "trace_id": secrets.token_hex(16)}))
        out.write("\n")
        out.write(json.dumps({"level": "info", "msg": "hello", "trace_id": trace_id}) + "\n")
    logs = LogsClient(endpoints.logs)
    lines = poll(
        lambda: logs.lines("stack-test", trace_id=trace_id),
        until=lambda found: len(found) == 1,
        timeout=20,
        describe=f"one line with trace_id={trace_id} in the log store",
    )
    assert lines[0].get("msg") == "hello"


def test_jetstream_message_round_trips_with_headers(endpoints: Endpoints) -> None:
    import nats

    async def round_trip() -> tuple[bytes, dict[str, str]]:
        nc = await nats.connect(endpoints.nats)
        try:
            js = nc.jetstream()
            await js.add_stream(name="STACKTEST", subjects=["stacktest.>"])
            headers = {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
            await js.publish("stacktest.hello", b"payload", headers=headers)
            sub = await js.pull_subscribe("stacktest.hello", durable="stacktest")
            [msg] = await sub.fetch(1, timeout=5)
            await msg.ack()
            return msg.data, {**(msg.headers or {}), "_sent": headers["traceparent"]}
        finally:
            await nc.close()

    data, headers = asyncio.run(round_trip())
    assert data == b"payload"
    assert headers["traceparent"] == headers["_sent"]


def test_motor_inserts_and_finds_on_the_mongodb_wire_server(endpoints: Endpoints) -> None:
    from motor.motor_asyncio import AsyncIOMotorClient

    async def insert_and_find() -> dict | None:
        client = AsyncIOMotorClient(endpoints.mongodb, serverSelectionTimeoutMS=5000)
        try:
            collection = client["stacktest"]["things"]
            key = secrets.token_hex(8)
            await collection.insert_one({"key": key, "qty": 3})
            return await collection.find_one({"key": key}, {"_id": 0})
        finally:
            client.close()

    found = asyncio.run(insert_and_find())
    assert found is not None and found["qty"] == 3


def test_sqlalchemy_writes_and_reads_postgresql(endpoints: Endpoints) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(endpoints.postgres)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS stacktest (k text primary key, v int)"))
            conn.execute(text("INSERT INTO stacktest VALUES (:k, :v)"), {"k": "a", "v": 7})
        with engine.connect() as conn:
            assert conn.execute(text("SELECT v FROM stacktest WHERE k='a'")).scalar_one() == 7
    finally:
        engine.dispose()


def test_span_exported_over_otlp_is_fetched_from_the_trace_store(endpoints: Endpoints) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    from obsconf.conformance.clients.traces import TracesClient

    provider = TracerProvider(resource=Resource.create({"service.name": "stack-test"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoints.otlp}/v1/traces"))
    )
    tracer = provider.get_tracer("obsconf.stack-test")
    with (
        tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent,
        tracer.start_as_current_span("child", kind=SpanKind.PRODUCER) as child,
    ):
        child.set_attribute("messaging.system", "nats")
    provider.shutdown()
    trace_id = format(parent.get_span_context().trace_id, "032x")

    traces = TracesClient(endpoints.traces)
    spans = poll(
        lambda: traces.trace(trace_id),
        until=lambda s: len(s) == 2,
        timeout=20,
        describe=f"trace {trace_id} with 2 spans in the trace store",
    )
    by_name = {s.name: s for s in spans}
    assert by_name["parent"].kind == "SERVER" and by_name["parent"].is_root
    assert by_name["child"].parent_span_id == by_name["parent"].span_id
    assert by_name["child"].kind == "PRODUCER"
    assert by_name["child"].attributes["messaging.system"] == "nats"
    assert {s.service for s in spans} == {"stack-test"}
