"""Outages under traffic, driven through the proxies the harness put between the services it
started and their dependencies (`System.dependencies`, `obsconf.stack.proxy`).

PostgreSQL: while it is cut the suite creates a user (user-service needs PostgreSQL: the answer
must be a 503, quickly) and places orders every second (order-service needs only MongoDB: they
are accepted, and their `order.created` events reach inventory-service, whose reservations
need PostgreSQL). After the outage every accepted order must be reserved exactly once.

NATS: while it is cut the suite creates a user every second (user-service needs only
PostgreSQL to accept it). After the outage every accepted user must get exactly one welcome
order: the event of a commit made while NATS was away must still be published.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.system import System
from obsconf.stack.proxy import TcpProxy

DEFAULT_OUTAGE_S = 8.0  # CI: longer than a few fixed-delay redeliveries, short enough to run
EVERY_S = 1.0  # one request per second during an outage
DEPENDENCY = "postgres"


class CannotCut(Exception):
    """The harness does not stand between these services and the dependency."""


@dataclass
class Outage:
    seconds: float
    user_call: Call | None = None  # POST /api/users during the outage
    orders: list[Call] = field(default_factory=list)  # POST /api/orders during the outage
    skus: dict[str, dict[str, int]] = field(default_factory=dict)  # order id -> sku -> qty
    restored_at: float = 0.0

    @property
    def accepted(self) -> list[Call]:
        return [c for c in self.orders if c.status == 201 and isinstance(c.body, dict)]


def _proxy(system: System, dependency: str) -> TcpProxy:
    proxy = system.dependencies.get(dependency)
    if proxy is None:
        raise CannotCut(
            f"the harness does not stand between {system.target.name}'s services and "
            f"{dependency} (it did not start them): declare the RES outage guarantees "
            "not_applicable in the target"
        )
    return proxy


def _paced(seconds: float, cut_at: float, sent: float) -> None:
    """Wait out the rest of one send interval, never past the outage's end (pacing)."""
    pause = min(EVERY_S - (time.monotonic() - sent), seconds - (time.monotonic() - cut_at))
    time.sleep(max(0.0, pause))


def run_outage(system: System, driver: Driver, seconds: float) -> Outage:
    """Cut PostgreSQL for `seconds`, send the outage traffic, restore it."""
    proxy = _proxy(system, DEPENDENCY)
    outage = Outage(seconds)
    tag = secrets.token_hex(4)
    proxy.cut()
    cut_at = time.monotonic()
    try:
        email = f"outage-{tag}@example.com"
        outage.user_call = driver.call(
            "user", "POST", "/api/users", json={"name": "Out Age", "email": email}
        )
        n = 0
        while time.monotonic() - cut_at < seconds:
            n += 1
            items = {f"OUT-{tag}-{n}": n, f"OUT-{tag}-x": 1}
            body = {"user_id": 1, "items": [{"sku": s, "qty": q} for s, q in items.items()]}
            sent = time.monotonic()
            call = driver.call("order", "POST", "/api/orders", json=body)
            outage.orders.append(call)
            if call.status == 201 and isinstance(call.body, dict):
                outage.skus[str(call.body.get("id"))] = items
            _paced(seconds, cut_at, sent)
    finally:
        proxy.restore()
        outage.restored_at = time.time()
    return outage


def run_nats_outage(system: System, driver: Driver, seconds: float) -> list[Call]:
    """Cut NATS for `seconds` while creating a user every second; the user calls."""
    proxy = _proxy(system, "nats")
    tag = secrets.token_hex(4)
    calls: list[Call] = []
    proxy.cut()
    cut_at = time.monotonic()
    try:
        while time.monotonic() - cut_at < seconds:
            sent = time.monotonic()
            email = f"nats-out-{tag}-{len(calls)}@example.com"
            calls.append(
                driver.call("user", "POST", "/api/users", json={"name": "Nat", "email": email})
            )
            _paced(seconds, cut_at, sent)
    finally:
        proxy.restore()
    return calls
