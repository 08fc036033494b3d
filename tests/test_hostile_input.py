"""Hostile input on the reference services (real stack): never a 5xx, nothing stored, bounded
answers, a stock quantity that cannot overflow, and unhandled errors logged with the trace_id."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest

from obsconf.conformance.hostile import hostile_requests, judge
from obsconf.reference_services.launcher import ReferenceServices
from obsconf.reference_services.validation import INT4_MAX
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack

ROLE_OF = {"user": "user-service", "order": "order-service", "inventory": "inventory-service"}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def _send(http: httpx.Client, base: str, case) -> httpx.Response:
    content = case.content()
    headers = {"Content-Type": "application/json"} if content is not None else {}
    return http.request(case.method, base + case.path, content=content, headers=headers)


def test_every_hostile_request_is_refused_without_a_5xx(
    http: httpx.Client, reference_services: ReferenceServices
) -> None:
    urls = reference_services.urls
    tag = secrets.token_hex(6)
    outcomes = []
    for case in hostile_requests(tag, user_id=910_000_000 + secrets.randbelow(1_000_000)):
        answer = _send(http, urls[ROLE_OF[case.role]], case)
        outcomes.append(
            (case.describe(), answer.status_code, judge(case, answer.status_code, answer.text))
        )
        if case.leftover is not None:
            lookup = http.get(urls[ROLE_OF[case.leftover.role]] + case.leftover.path)
            assert lookup.json() == [], f"{case.describe()} stored something: {lookup.text[:200]}"
    print("\n".join(f"{status}  {what}" for what, status, _ in outcomes))
    assert [o for o in outcomes if o[2]] == []
    assert {status for _, status, _ in outcomes} <= {413, 422}
    retry = http.post(
        urls["user-service"] + "/api/users",
        json={"name": "Ada", "email": f"hostile-{tag}@example.com"},
    )
    assert retry.status_code == 201, "a refused user was stored after all"
    for base in urls.values():
        assert http.get(base + "/health").status_code == 200


def test_validation_answer_does_not_echo_the_input(
    http: httpx.Client, reference_services: ReferenceServices
) -> None:
    name = "N" * 50_000  # under the body limit, over the field's 200 characters
    answer = http.post(
        reference_services.urls["user-service"] + "/api/users",
        json={"name": name, "email": "a@b.c"},
    )
    assert answer.status_code == 422
    assert len(answer.content) < 1000 and ["body", "name"] in [
        e["loc"] for e in answer.json()["detail"]
    ]


def test_stock_quantity_refuses_what_the_column_cannot_hold(
    http: httpx.Client, reference_services: ReferenceServices, endpoints: Endpoints
) -> None:
    base = reference_services.urls["inventory-service"]
    sku = f"FULL-{secrets.token_hex(4)}"
    assert (
        http.post(
            base + "/api/inventory", json={"sku": sku, "qty": 1, "warehouse": "w"}
        ).status_code
        == 201
    )
    conninfo = endpoints.postgres.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("UPDATE inventory SET qty = %s WHERE sku = %s", (INT4_MAX - 5, sku))
    answer = http.post(base + "/api/inventory", json={"sku": sku, "qty": 10, "warehouse": "w"})
    assert answer.status_code == 409 and str(INT4_MAX) in answer.json()["detail"], answer.text
    fits = http.post(base + "/api/inventory", json={"sku": sku, "qty": 5, "warehouse": "w"})
    assert fits.status_code == 201 and fits.json()["qty"] == INT4_MAX, fits.text


def test_an_unhandled_error_is_a_500_logged_at_error_with_the_trace_id(
    http: httpx.Client, endpoints: Endpoints, tmp_path: Path
) -> None:
    """Under `no-input-hardening` a NUL reaches PostgreSQL and the driver raises: the 500 and
    its traceback are logged inside the request's span, no line without a trace_id."""
    (tmp_path / "logs").mkdir()
    private = replace(endpoints, log_dir=str(tmp_path / "logs"), scrape_dir=str(tmp_path))
    with ReferenceServices(
        private, faults=["no-input-hardening"], services=["user-service"]
    ) as services:
        answer = http.post(
            services.urls["user-service"] + "/api/users",
            json={"name": "Ada\x00", "email": f"nul-{secrets.token_hex(4)}@example.com"},
        )
        assert answer.status_code == 500 and answer.json() == {"detail": "internal error"}
        request_id = answer.headers["x-request-id"]
        log = tmp_path / "logs" / "user-service.log"

        def errors() -> list[dict]:
            lines = [
                json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")
            ]
            return [ln for ln in lines if ln["level"] == "error"]

        found = poll(errors, timeout=10, describe="the error line of the 500")
        assert [ln["request_id"] for ln in found] == [request_id], found
        assert len(found[0]["trace_id"]) == 32 and "Traceback" in found[0]["error"]
        assert "Exception in ASGI application" not in log.read_text()
