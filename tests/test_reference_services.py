"""The reference services on the real stack: the welcome flow, errors, delivery semantics."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import nats
import nats.js.errors
import psycopg
import pytest
from pymongo import MongoClient

from obsconf.conformance.clients.logs import LogsClient
from obsconf.reference_services.events import STREAM
from obsconf.reference_services.launcher import ReferenceServices
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.ports import free_port
from obsconf.stack.process import ManagedProcess
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack

USER, ORDER, INVENTORY = "user-service", "order-service", "inventory-service"


@pytest.fixture(scope="module")
def urls(reference_services: ReferenceServices) -> dict[str, str]:
    return reference_services.urls


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def new_email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@example.com"


def log_lines(path: Path) -> list[dict]:
    """A service's JSON log lines as written (the file the log shipper tails)."""
    lines = []
    for raw in path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def metric(http: httpx.Client, base_url: str, sample: str) -> float:
    """One sample's value from a service's /metrics (0 when absent)."""
    for line in http.get(base_url + "/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_welcome_flow_reaches_mongodb_and_inventory(
    http: httpx.Client, urls: dict[str, str], endpoints: Endpoints
) -> None:
    created = http.post(urls[USER] + "/api/users", json={"name": "Ada", "email": new_email()})
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]

    orders = poll(
        lambda: http.get(urls[ORDER] + "/api/orders", params={"user_id": user_id}).json(),
        until=lambda found: len(found) == 1,
        timeout=15,
        describe=f"welcome order of {user_id}",
    )
    assert orders[0]["kind"] == "welcome"
    with MongoClient(endpoints.mongodb, serverSelectionTimeoutMS=3000) as mongo:
        assert mongo["obsconf"].orders.count_documents({"user_id": user_id}) == 1

    reservations = poll(
        lambda: http.get(
            urls[INVENTORY] + "/api/reservations", params={"order_id": orders[0]["id"]}
        ).json(),
        until=lambda found: len(found) == 1,
        timeout=15,
        describe="stock reservation",
    )
    assert reservations[0]["sku"] == "WELCOME-KIT"
    levels = http.get(urls[INVENTORY] + "/api/stock-levels", params={"sku": "WELCOME-KIT"})
    assert levels.json()[0]["reserved"] >= 1


def test_invalid_input_is_422_naming_the_field_and_writes_nothing(
    http: httpx.Client, urls: dict[str, str]
) -> None:
    users_before = metric(http, urls[USER], "users_created_total")
    published_before = metric(http, urls[USER], 'events_published_total{subject="user.created"}')
    email = "not-an-email"
    answer = http.post(urls[USER] + "/api/users", json={"name": "Bob", "email": email})
    assert answer.status_code == 422
    assert ["body", "email"] in [error["loc"] for error in answer.json()["detail"]]
    answer = http.post(urls[USER] + "/api/users", json={"email": new_email()})
    assert ["body", "name"] in [error["loc"] for error in answer.json()["detail"]]
    answer = http.post(urls[ORDER] + "/api/orders", json={"user_id": 1, "items": []})
    assert answer.status_code == 422
    assert ["body", "items"] in [error["loc"] for error in answer.json()["detail"]]
    answer = http.post(
        urls[INVENTORY] + "/api/inventory", json={"sku": "X", "qty": -1, "warehouse": "w"}
    )
    assert ["body", "qty"] in [error["loc"] for error in answer.json()["detail"]]

    all_users = http.get(urls[USER] + "/api/users", params={"limit": 1000}).json()
    assert email not in [user["email"] for user in all_users]
    assert metric(http, urls[USER], "users_created_total") == users_before
    assert (
        metric(http, urls[USER], 'events_published_total{subject="user.created"}')
        == published_before
    )


def test_duplicate_email_is_409(http: httpx.Client, urls: dict[str, str]) -> None:
    body = {"name": "Cy", "email": new_email()}
    assert http.post(urls[USER] + "/api/users", json=body).status_code == 201
    again = http.post(urls[USER] + "/api/users", json=body)
    assert again.status_code == 409
    assert body["email"] in again.json()["detail"]


def test_unknown_ids_are_404(http: httpx.Client, urls: dict[str, str]) -> None:
    assert http.get(urls[USER] + "/api/users/987654321").status_code == 404
    assert http.get(urls[ORDER] + f"/api/orders/{uuid.uuid4()}").status_code == 404


def test_request_id_is_echoed_generated_and_logged(
    http: httpx.Client,
    urls: dict[str, str],
    reference_services: ReferenceServices,
    endpoints: Endpoints,
) -> None:
    given = f"req-{uuid.uuid4().hex}"
    answer = http.get(urls[USER] + "/api/users/1", headers={"X-Request-ID": given})
    assert answer.headers["x-request-id"] == given
    generated = http.get(urls[USER] + "/api/users/1").headers["x-request-id"]
    assert len(generated) == 32 and generated != given

    log_file = reference_services.log_path(USER)
    lines = poll(
        lambda: [ln for ln in log_lines(log_file) if ln.get("request_id") == given],
        timeout=5,
        describe=f"a log line with request_id {given}",
    )
    assert len(lines[0]["trace_id"]) == 32 and len(lines[0]["span_id"]) == 16
    logs = LogsClient(endpoints.logs)
    try:
        poll(
            lambda: logs.lines(USER, request_id=given),
            timeout=15,
            describe=f"the log store to have request_id {given}",
        )
    finally:
        logs.close()


def test_malformed_traceparent_starts_a_new_trace(
    http: httpx.Client, urls: dict[str, str], reference_services: ReferenceServices
) -> None:
    request_id = f"req-{uuid.uuid4().hex}"
    answer = http.post(
        urls[USER] + "/api/users",
        json={"name": "Di", "email": new_email()},
        headers={"traceparent": "00-not-a-valid-trace-id-zz", "X-Request-ID": request_id},
    )
    assert answer.status_code == 201
    lines = poll(
        lambda: [
            ln
            for ln in log_lines(reference_services.log_path(USER))
            if ln.get("request_id") == request_id
        ],
        timeout=5,
        describe="the request's log lines",
    )
    trace_ids = {line["trace_id"] for line in lines}
    assert len(trace_ids) == 1
    (trace_id,) = trace_ids
    assert len(trace_id) == 32 and int(trace_id, 16) != 0
    assert not [line for line in lines if line["level"] == "error"]


async def _publish_twice(nats_url: str, event: dict, headers: dict[str, str]) -> None:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        for _ in range(2):  # distinct Nats-Msg-Id: JetStream stores and delivers both
            await js.publish(
                "user.created",
                json.dumps(event).encode(),
                stream=STREAM,
                headers={**headers, "Nats-Msg-Id": uuid.uuid4().hex},
            )
    finally:
        await client.close()


def test_redelivered_event_creates_nothing_twice_and_continues_the_trace(
    http: httpx.Client, urls: dict[str, str], endpoints: Endpoints
) -> None:
    user_id = 2_000_000_000 + uuid.uuid4().int % 100_000_000
    trace_id = uuid.uuid4().hex
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "user.created",
        "data": {"id": user_id, "name": "Eve", "email": new_email()},
    }
    consumed = 'events_consumed_total{subject="user.created"}'
    before = metric(http, urls[ORDER], consumed)
    asyncio.run(
        _publish_twice(endpoints.nats, event, {"traceparent": f"00-{trace_id}-{'ab' * 8}-01"})
    )
    poll(
        lambda: metric(http, urls[ORDER], consumed),
        until=lambda n: n >= before + 2,
        timeout=15,
        describe="order-service to process both deliveries",
    )
    orders = http.get(urls[ORDER] + "/api/orders", params={"user_id": user_id}).json()
    assert len(orders) == 1, orders

    reservations = poll(
        lambda: http.get(
            urls[INVENTORY] + "/api/reservations", params={"order_id": orders[0]["id"]}
        ).json(),
        until=lambda found: len(found) >= 1,
        timeout=15,
        describe="the reservation",
    )
    assert len(reservations) == 1

    def consume_spans() -> list[dict]:
        answer = httpx.get(f"{endpoints.traces}/api/traces/{trace_id}", timeout=5)
        spans = answer.json()["data"][0]["spans"] if answer.status_code == 200 else []
        return [s for s in spans if s["operationName"] == "process user.created"]

    spans = poll(
        consume_spans,
        until=lambda found: len(found) == 2,
        timeout=15,
        describe=f"both consume spans in trace {trace_id}",
    )
    assert {s["traceID"] for s in spans} == {trace_id}


def _database_url(endpoints: Endpoints, name: str) -> str:
    """A fresh database on the stack's PostgreSQL (isolates a dedicated service's outbox)."""
    conninfo = endpoints.postgres.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return endpoints.postgres.rsplit("/", 1)[0] + f"/{name}"


def _nats_server(port: int, store: Path, log: Path) -> ManagedProcess:
    process = ManagedProcess(
        "nats-private",
        ["nats-server", "-js", "-sd", str(store), "-p", str(port), "-a", "127.0.0.1"],
        log,
    )
    process.start()
    return process


async def _stream_user_ids(nats_url: str) -> list[int]:
    client = await nats.connect(nats_url, connect_timeout=1, max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        try:
            info = await js.stream_info(STREAM)
        except nats.js.errors.NotFoundError:
            return []
        ids = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(STREAM, seq)
            ids.append(json.loads(message.data)["data"]["id"])
        return ids
    finally:
        await client.close()


def test_user_created_while_nats_is_down_is_published_when_it_is_back(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    port = free_port()
    nats_url = f"nats://127.0.0.1:{port}"
    server = _nats_server(port, tmp_path / "nats", tmp_path / "nats.log")
    private = replace(
        endpoints,
        nats=nats_url,
        postgres=_database_url(endpoints, f"natsdown_{uuid.uuid4().hex[:8]}"),
        log_dir=str(tmp_path / "logs"),
        scrape_dir=str(tmp_path),
    )
    (tmp_path / "logs").mkdir()
    try:
        poll(
            lambda: asyncio.run(_stream_user_ids(nats_url)) is not None,
            timeout=10,
            describe="private nats-server to answer",
        )
        with ReferenceServices(private, services=[USER]) as services:
            server.stop()
            with httpx.Client(timeout=10) as client:
                answer = client.post(
                    services.urls[USER] + "/api/users", json={"name": "Fay", "email": new_email()}
                )
            assert answer.status_code == 201, answer.text
            user_id = answer.json()["id"]
            server = _nats_server(port, tmp_path / "nats", tmp_path / "nats.log")
            poll(
                lambda: asyncio.run(_stream_user_ids(nats_url)),
                until=lambda ids: user_id in ids,
                timeout=20,
                describe=f"user.created for user {user_id} in the stream",
            )
    finally:
        server.stop()


def test_dependency_down_is_503_with_error_log_not_a_hang(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    dead = f"mongodb://127.0.0.1:{free_port()}"
    port = free_port()
    log = tmp_path / "order-service.log"
    env = {
        "OBSCONF_PORT": str(port),
        "MONGODB_URL": dead,
        "NATS_URL": endpoints.nats,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoints.otlp,
        "PYTHONUNBUFFERED": "1",
        "PATH": "/usr/bin:/bin",
    }
    process = ManagedProcess(
        "order-dead-mongo",
        [sys.executable, "-m", "obsconf.reference_services.order"],
        log,
        env={**env, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    try:
        health = poll(
            lambda: httpx.get(base + "/health", timeout=5),
            timeout=20,
            until=lambda r: r.status_code in (200, 503),
            describe="order-service to answer /health",
        )
        assert health.status_code == 503
        assert health.json()["dependencies"]["nats"] == "ok"
        assert health.json()["dependencies"]["mongodb"].startswith("down")
        answer = httpx.post(
            base + "/api/orders", timeout=10, json={"user_id": 1, "items": [{"sku": "A", "qty": 1}]}
        )
        assert answer.status_code == 503
        assert answer.json()["dependency"] == "mongodb"
        request_id = answer.headers["x-request-id"]
        errors = poll(
            lambda: [
                ln
                for ln in log_lines(log)
                if ln.get("request_id") == request_id and ln["level"] == "error"
            ],
            timeout=5,
            describe="the error log line",
        )
        assert len(errors[0]["trace_id"]) == 32
    finally:
        process.stop()
