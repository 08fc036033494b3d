"""The real PostgreSQL of the local stack stopped longer than any redelivery budget: every order
accepted meanwhile is reserved once it is back, none twice, none dead-lettered; requests that
need PostgreSQL answer 503 and /health names it without driver internals."""

from __future__ import annotations

import os
import secrets
import time

import httpx
import pytest

from obsconf.reference_services.launcher import ReferenceServices
from obsconf.stack.backends import Stack
from obsconf.stack.local import LocalStack
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack

# The old consumer gave up after 50 deliveries 1 s apart (about 55 s): outlast that.
OUTAGE_S = float(os.environ.get("OBSCONF_LONG_OUTAGE_S", "70"))
ORDER_EVERY_S = 10.0


def _metric(http: httpx.Client, base: str, name: str) -> float:
    lines = http.get(base + "/metrics").text.splitlines()
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in lines if ln.startswith(name))


def test_orders_accepted_while_postgres_is_down_are_all_reserved_after(
    session_stack: Stack, reference_services: ReferenceServices
) -> None:
    if not isinstance(session_stack, LocalStack):
        pytest.skip("stops a component of the local stack (--stack local)")
    urls = reference_services.urls
    order, inventory, user = urls["order-service"], urls["inventory-service"], urls["user-service"]
    tag = secrets.token_hex(4)
    accepted: dict[str, str] = {}  # order id -> sku
    with httpx.Client(timeout=15.0) as http:
        dead_before = _metric(http, inventory, "events_dead_lettered_total")
        session_stack.stop_component("postgres")
        stopped = time.monotonic()
        try:
            down = http.post(user + "/api/users", json={"name": "X", "email": f"x-{tag}@e.io"})
            assert down.status_code == 503 and down.json()["dependency"] == "postgres", down.text
            health = http.get(inventory + "/health").json()["dependencies"]["postgres"]
            assert health.startswith("down") and "127.0.0.1" not in health, health
            n = 0
            while time.monotonic() - stopped < OUTAGE_S:
                n += 1
                sku = f"OUT-{tag}-{n}"
                answer = http.post(
                    order + "/api/orders", json={"user_id": 7, "items": [{"sku": sku, "qty": n}]}
                )
                assert answer.status_code == 201, answer.text
                accepted[answer.json()["id"]] = sku
                left = OUTAGE_S - (time.monotonic() - stopped)
                time.sleep(max(0.0, min(ORDER_EVERY_S, left)))  # pacing the traffic, not a wait
        finally:
            session_stack.start_component("postgres")
        outage = time.monotonic() - stopped
        restarted = time.monotonic()

        def reserved() -> dict[str, list]:
            return {
                oid: http.get(inventory + "/api/reservations", params={"order_id": oid}).json()
                for oid in accepted
            }

        found = poll(
            reserved,
            until=lambda got: all(got.values()),
            timeout=60,
            describe=f"reservations of the {len(accepted)} orders accepted during the outage",
        )
        took = time.monotonic() - restarted
        print(
            f"\nPostgreSQL down {outage:.0f} s: {len(accepted)} orders accepted, "
            f"{sum(1 for rows in found.values() if rows)} reserved {took:.1f} s after restart"
        )
        for oid, rows in found.items():
            assert [(r["sku"], r["qty"]) for r in rows] == [
                (accepted[oid], int(accepted[oid].rsplit("-", 1)[1]))
            ], f"order {oid} reserved {rows}"
        assert _metric(http, inventory, "events_dead_lettered_total") == dead_before
