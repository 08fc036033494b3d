"""The load itself: N user-creating flows and a few 404 probes, sent concurrently."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.nats_tap import NatsTap
from obsconf.conformance.scenarios import create_user, get_user
from obsconf.conformance.system import System

NOT_FOUND = 4  # GET /api/users/{id} of ids that do not exist, sent among the flows
CONCURRENCY = 32


@dataclass
class Sent:
    """The requests of one load: the user-creating flows and the 404 probes among them."""

    flows: list[Call]
    probes: list[Call]
    started: float  # epoch s, first request sent
    ended: float  # epoch s, last answer received

    @property
    def calls(self) -> list[Call]:
        return [*self.flows, *self.probes]


def send(
    system: System, flows: int, concurrency: int = CONCURRENCY, probes: int = NOT_FOUND
) -> Sent:
    """`flows` POST /api/users and `probes` GETs of absent users, `concurrency` at a time."""
    local = threading.local()
    drivers: list[Driver] = []
    lock = threading.Lock()

    def driver() -> Driver:
        if not hasattr(local, "driver"):
            local.driver = system.driver(timeout=30.0)
            with lock:
                drivers.append(local.driver)
        made: Driver = local.driver
        return made

    def run(i: int) -> Call:
        if i < flows:
            return create_user(driver())
        return get_user(driver(), 990_000_000 + i)

    started = time.time()
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, flows + probes))) as pool:
            calls = list(pool.map(run, range(flows + probes)))
    finally:
        for d in drivers:
            d.close()
    return Sent(calls[:flows], calls[flows:], started, max(c.ended for c in calls))


def tap(
    system: System, subjects: Iterable[str]
) -> contextlib.AbstractContextManager[NatsTap | None]:
    """A NATS tap on the flow subjects when the target gives a NATS URL, else a no-op."""
    if not system.nats_url:
        return contextlib.nullcontext(None)
    return NatsTap(system.nats_url, list(subjects))
