"""A PostgreSQL outage under traffic, driven through the proxy the harness put between the
services it started and the database (`System.dependencies`, `stack.proxy`).

While the database is cut the suite creates a user (user-service needs PostgreSQL: the answer
must be a 503, quickly) and places orders every second (order-service needs only MongoDB: they
are accepted, and their `order.created` events reach inventory-service, whose reservations
need PostgreSQL). After the outage every accepted order must be reserved exactly once.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from conformance.driver import Call, Driver
from conformance.system import System

OUTAGE_ENV = "OBSCONF_OUTAGE_S"  # set by `obsconf run --outage-seconds`
DEFAULT_OUTAGE_S = 8.0  # CI: longer than a few fixed-delay redeliveries, short enough to run
ORDER_EVERY_S = 1.0
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


def run_outage(system: System, driver: Driver, seconds: float) -> Outage:
    """Cut PostgreSQL for `seconds`, send the outage traffic, restore it."""
    proxy = system.dependencies.get(DEPENDENCY)
    if proxy is None:
        raise CannotCut(
            f"the harness does not stand between {system.target.name}'s services and "
            f"{DEPENDENCY} (it did not start them): declare the RES outage guarantees "
            "not_applicable in the target"
        )
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
            pause = ORDER_EVERY_S - (time.monotonic() - sent)
            time.sleep(max(0.0, min(pause, seconds - (time.monotonic() - cut_at))))  # pacing
    finally:
        proxy.restore()
        outage.restored_at = time.time()
    return outage
