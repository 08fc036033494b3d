"""Scenarios: the seed design's flows, driven through the target's public API.

A scenario sends requests with the `Driver`, then gathers what the backends hold about them:
the trace (polled until it reaches every expected service, or until the deadline — a broken
trace is returned as it is, for the checks to explain), and the other traces that spans of the
flow's services started in the same window (a flow split over several traces).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field, replace

from conformance.clients.traces import TraceNotFound
from conformance.driver import Call, Driver
from conformance.nats_tap import NatsTap, TappedMessage
from conformance.system import System
from conformance.traces.analysis import Expectation, analyse, expectation_from_target
from conformance.traces.model import Span
from stack.waiting import PollTimeout, poll

FLOW_TIMEOUT = 10.0
TRACESTATE = "obsconf=t61rcWkgMzE,other=v1"


def unique_email() -> str:
    return f"obsconf-{secrets.token_hex(6)}@example.com"


def create_user(driver: Driver, **call_options: object) -> Call:
    payload = {"name": "Ada Conformance", "email": unique_email()}
    return driver.call("user", "POST", "/api/users", json=payload, **call_options)


def get_user(driver: Driver, user_id: object, **call_options: object) -> Call:
    return driver.call(
        "user", "GET", f"/api/users/{user_id}", route="/api/users/{id}", **call_options
    )


def receive_stock(driver: Driver, sku: str, qty: int = 10, warehouse: str = "main") -> Call:
    return driver.call(
        "inventory", "POST", "/api/inventory", json={"sku": sku, "qty": qty, "warehouse": warehouse}
    )


def stock_levels(driver: Driver, sku: str) -> Call:
    return driver.call(
        "inventory", "GET", f"/api/stock-levels?sku={sku}", route="/api/stock-levels"
    )


def fetch_trace(system: System, trace_id: str) -> list[Span]:
    try:
        return system.traces.trace(trace_id)
    except TraceNotFound:
        return []


def await_trace(
    system: System, trace_id: str, expectation: Expectation | None, timeout: float = FLOW_TIMEOUT
) -> list[Span]:
    """The trace once it has no missing service (or as it stands at the deadline)."""

    def complete(spans: list[Span]) -> bool:
        if not spans:
            return False
        if expectation is None:
            return True
        waiting_for = {"missing-service", "orphan"}  # a parent (e.g. the root) not yet exported
        return not [f for f in analyse(spans, expectation) if f.code in waiting_for]

    try:
        return poll(
            lambda: fetch_trace(system, trace_id),
            until=complete,
            timeout=timeout,
            describe=f"trace {trace_id}",
        )
    except PollTimeout:
        return fetch_trace(system, trace_id)


def expectation_for(system: System, call: Call) -> Expectation:
    """The target's path expectation for one call: the caller's span (sent in traceparent,
    never exported) is the expected external parent of the entry span."""
    base = expectation_from_target(system.target)
    external = frozenset({call.client_span_id}) if call.client_span_id else frozenset()
    return replace(base, external_parents=external)


def await_traces(system: System, calls: list[Call], timeout: float = FLOW_TIMEOUT) -> dict:
    """Traces of several concurrent flows, polled together under one deadline."""
    deadline = time.monotonic() + timeout
    return {
        c.trace_id: await_trace(
            system,
            c.trace_id or "",
            expectation_for(system, c),
            max(0.5, deadline - time.monotonic()),
        )
        for c in calls
    }


@dataclass
class Flow:
    """A user-creation flow: the request and everything it caused."""

    call: Call
    user_id: object
    expectation: Expectation
    spans: list[Span]  # the trace of the request (by the trace id the suite sent)
    window_traces: dict[str, list[Span]]  # every trace the flow's services had in its window
    messages: list[TappedMessage] = field(default_factory=list)
    ended: float = 0.0

    @property
    def trace_id(self) -> str:
        return self.call.trace_id or ""

    def spans_of(self, service: str) -> list[Span]:
        return [s for s in self.spans if s.service == service]


def user_flow(system: System, driver: Driver) -> Flow:
    """POST /api/users with traceparent + tracestate; gather the trace, window and messages."""
    subjects = list(system.target.subjects.values())
    with NatsTap(system.nats_url, subjects) if system.nats_url else _NoTap() as tap:
        call = create_user(driver, headers={"tracestate": TRACESTATE})
        user_id = call.body.get("id") if isinstance(call.body, dict) else None
        expectation = expectation_for(system, call)
        spans = await_trace(system, call.trace_id or "", expectation)
        window = gather_window(system, call.started, expectation.services)
        messages = _flow_messages(tap.snapshot(), call, user_id)
    return Flow(call, user_id, expectation, spans, window, messages, ended=time.time())


WINDOW_SLACK_S = 0.05  # suite and services share a clock; this covers rounding only


def gather_window(system: System, since: float, services: tuple[str, ...]) -> dict[str, list[Span]]:
    """Every trace that began after `since` with spans of these services (complete traces).

    A trace that began earlier (a previous flow whose consumer is still running) is not part
    of this flow, even if some of its spans fall into the window."""
    found: dict[str, list[Span]] = {}
    for service in services:
        for trace_id in system.traces.search(service, since - WINDOW_SLACK_S, time.time() + 1):
            if trace_id in found:
                continue
            spans = fetch_trace(system, trace_id)
            if spans and min(s.start_ns for s in spans) / 1e9 >= since - WINDOW_SLACK_S:
                found[trace_id] = spans
    return found


def _flow_messages(
    messages: list[TappedMessage], call: Call, user_id: object
) -> list[TappedMessage]:
    """The tapped messages this flow caused: they name the new user (by id or email)."""
    email = call.body.get("email") if isinstance(call.body, dict) else None
    mine = []
    for message in messages:
        try:
            payload = json.loads(message.data)
        except ValueError:
            continue
        text = json.dumps(payload)
        names_user = user_id is not None and f'"user_id": {json.dumps(user_id)}' in text
        if (email and email in text) or names_user:
            mine.append(message)
    return mine


class _NoTap:
    def __enter__(self) -> _NoTap:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def snapshot(self) -> list[TappedMessage]:
        return []


def poll_trace_ready(system: System, trace_id: str | None, timeout: float = 10.0) -> list[Span]:
    """The trace as soon as the store has any span of it (empty at the deadline)."""
    return await_trace(system, trace_id or "", None, timeout)
