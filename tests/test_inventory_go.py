"""The Go inventory service on the real stack: what the suite does not drive (422 writes
nothing, a dependency down is a 503 with an error log line, not a hang)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from obsconf.conformance.contract import stack_values
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.native import ensure_built
from obsconf.stack.ports import free_port
from obsconf.stack.process import ManagedProcess
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack


def start(endpoints: Endpoints, log: Path, **env: str) -> tuple[ManagedProcess, str]:
    """The Go service on the stack (env overrides), once /health answers 200 or 503."""
    values = stack_values(endpoints)
    port = free_port()
    process = ManagedProcess(
        "inventory-go",
        [str(ensure_built("inventory-go"))],
        log,
        env={
            "PATH": "/usr/bin:/bin",
            "OBSCONF_PORT": str(port),
            "POSTGRES_URL": values["postgres_url"],
            "MONGODB_URL": values["mongodb_url"],
            "NATS_URL": values["nats_url"],
            "OTEL_EXPORTER_OTLP_ENDPOINT": values["otlp_endpoint"],
            **env,
        },
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    poll(
        lambda: httpx.get(base + "/health", timeout=5).status_code,
        until=lambda status: status in (200, 503),
        timeout=30,
        describe=f"inventory-go /health (log {log})",
    )
    return process, base


@pytest.fixture(scope="module")
def inventory(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, base = start(endpoints, tmp_path_factory.mktemp("go") / "inventory-service.log")
    try:
        yield base
    finally:
        process.stop()


def log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"qty": 1, "warehouse": "w"}, "sku"),
        ({"sku": "  ", "qty": 1, "warehouse": "w"}, "sku"),
        ({"qty": 0, "warehouse": "w"}, "qty"),
        ({"qty": 1_000_001, "warehouse": "w"}, "qty"),
        ({"qty": "many", "warehouse": "w"}, "qty"),
        ({"qty": 1.5, "warehouse": "w"}, "qty"),
        ({"qty": 1}, "warehouse"),
    ],
)
def test_invalid_receipt_is_422_naming_the_field_and_writes_nothing(
    inventory: str, body: dict, field: str
) -> None:
    sku = f"BAD-{uuid.uuid4().hex[:8]}"
    if field != "sku":
        body = {"sku": sku, **body}
    answer = httpx.post(inventory + "/api/inventory", json=body)
    assert answer.status_code == 422, answer.text
    assert ["body", field] in [problem["loc"] for problem in answer.json()["detail"]]
    assert httpx.get(inventory + "/api/stock-levels", params={"sku": sku}).json() == []


def test_a_receipt_is_written_to_both_databases(inventory: str) -> None:
    sku = f"OK-{uuid.uuid4().hex[:8]}"
    for qty, total in ((3, 3), (2, 5)):
        body = {"sku": sku, "qty": qty, "warehouse": "w"}
        answer = httpx.post(inventory + "/api/inventory", json=body)
        assert answer.status_code == 201 and answer.json() == {**body, "qty": total}
    [level] = httpx.get(inventory + "/api/stock-levels", params={"sku": sku}).json()
    assert (level["on_hand"], level["reserved"], level["available"]) == (5, 0, 5)


def test_mongodb_down_is_503_with_error_log_not_a_hang(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    log = tmp_path / "inventory-service.log"
    process, base = start(endpoints, log, MONGODB_URL=f"mongodb://127.0.0.1:{free_port()}")
    try:
        health = httpx.get(base + "/health", timeout=5)
        assert health.status_code == 503
        assert health.json()["dependencies"]["postgres"] == "ok"
        assert health.json()["dependencies"]["mongodb"].startswith("down")
        answer = httpx.post(
            base + "/api/inventory", timeout=10, json={"sku": "D", "qty": 1, "warehouse": "w"}
        )
        assert answer.status_code == 503 and answer.json()["dependency"] == "mongodb"
        request_id = answer.headers["x-request-id"]
        errors = [
            line
            for line in log_lines(log)
            if line["request_id"] == request_id and line["level"] == "error"
        ]
        assert errors and len(errors[0]["trace_id"]) == 32
        assert answer.elapsed.total_seconds() < 10
    finally:
        process.stop()
