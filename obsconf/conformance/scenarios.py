"""Scenarios: the seed design's flows, driven through the target's public API.

A scenario sends requests with the `Driver`, then gathers what the backends hold about them:
the flow's traces — the request's trace and every trace linked to it — once they have
*settled* (`settle`: the expected structure is present and nothing new arrived for the
target's settle interval; a broken flow is returned as it stands at the deadline, for the
checks to explain), and the other traces the flow's services began in the same window (a
flow split over unlinked traces).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypedDict, Unpack

from obsconf.conformance.clients.traces import TraceNotFound
from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.nats_tap import NatsTap, TappedMessage
from obsconf.conformance.system import System
from obsconf.conformance.traces.expectation import Expectation, expectation_from_target
from obsconf.conformance.traces.findings import FindingCode
from obsconf.conformance.traces.flow import flow_spans, follow_links, missing_structure, signature
from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.rules import analyse_flow
from obsconf.stack.waiting import PollTimeout, poll

FLOW_TIMEOUT = 10.0
WINDOW_SLACK_S = 0.05  # suite and services share a clock; this covers rounding only
TRACESTATE = "obsconf=t61rcWkgMzE,other=v1"


def unique_email() -> str:
    return f"obsconf-{secrets.token_hex(6)}@example.com"


class CallOptions(TypedDict, total=False):
    """What a scenario's caller may add to its `Driver.call`."""

    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None
    traced: bool
    request_id: str | None


def create_user(driver: Driver, **call_options: Unpack[CallOptions]) -> Call:
    payload = {"name": "Ada Conformance", "email": unique_email()}
    return driver.call("user", "POST", "/api/users", json=payload, **call_options)


def get_user(driver: Driver, user_id: object, **call_options: Unpack[CallOptions]) -> Call:
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


def error_paths(system: System, driver: Driver) -> list[Call]:
    """The `error-paths` scenario (catalog.yaml `scenarios`): each service's rejection and
    failure paths, once."""
    calls = [
        driver.call("user", "POST", "/api/users", json={"name": "", "email": "not-an-email"}),
        driver.call("user", "GET", "/api/users/999999999", route="/api/users/{id}"),
        driver.call("order", "POST", "/api/orders", json={"user_id": 0, "items": []}),
        driver.call("inventory", "POST", "/api/inventory", json={"sku": "", "qty": 0}),
    ]
    hook = system.target.error_hook
    if hook is not None:
        calls.append(driver.call("user", hook.method, hook.path))
    # Their telemetry lands before anything else is sent: the checks that read a flow by its
    # time window then never see these requests' lines or spans.
    settle_calls(system, calls)
    return calls


def fetch_trace(system: System, trace_id: str) -> list[Span]:
    try:
        return system.traces.trace(trace_id)
    except TraceNotFound:
        return []


FLOW_CREATED_STATUS = 201


def expectation_for(system: System, call: Call) -> Expectation:
    """What the trace of one call must hold: a created user starts the whole seed flow (user →
    NATS → order → NATS → inventory); any other call only its entry service's SERVER span.
    The caller's span (sent in traceparent, never exported) is the entry span's parent."""
    base = expectation_from_target(system.target)
    creates_user = (call.role, call.method, call.route, call.status) == (
        "user",
        "POST",
        "/api/users",
        FLOW_CREATED_STATUS,
    )
    if not creates_user:
        base = replace(base, services=(system.names[call.role],), hops=())
    external = frozenset({call.client_span_id}) if call.client_span_id else frozenset()
    return replace(base, external_parents=external)


@dataclass
class Settled:
    """The traces of one call once judged ready: its own trace and every trace linked to it."""

    trace_id: str  # the call's trace
    expectation: Expectation
    traces: dict[str, list[Span]]  # the call's trace first, then the traces linked to it
    missing: list[str]  # the structure still missing when the wait ended (empty if settled)
    waited_s: float

    @property
    def spans(self) -> list[Span]:
        return flow_spans(self.traces)

    @property
    def settled(self) -> bool:
        return not self.missing

    def describe_wait(self) -> str:
        if self.settled:
            return f"settled after {self.waited_s:.1f}s"
        return f"judged as it stood after {self.waited_s:.1f}s; still missing: " + ", ".join(
            self.missing
        )


@dataclass
class _Watch:
    """What a settle loop knows about one call between rounds."""

    settled: Settled
    started: float
    seen: frozenset[tuple[str, str, int]] = frozenset()  # `signature` of the flow
    changed: float = 0.0
    done: bool = False


def settle_calls(system: System, calls: list[Call], timeout: float = FLOW_TIMEOUT) -> list[Settled]:
    """`settle` for the traces of several calls, all under one deadline."""
    wanted = [(c.trace_id or "", expectation_for(system, c)) for c in calls]
    return settle(system, wanted, min((c.started for c in calls), default=0.0), timeout)


def settle(
    system: System,
    wanted: list[tuple[str, Expectation]],
    since: float = 0.0,
    timeout: float = FLOW_TIMEOUT,
) -> list[Settled]:
    """Wait until each (trace id, expectation) flow is ready to judge, under one deadline.

    Under `consumer_relation: link` the traces linked to each flow are found among the traces
    the expected services began after `since` (epoch s).

    Ready = the structure the expectation names is present (`missing_structure`) *and* the
    flow's spans stayed unchanged for the target's settle interval (three times that while a
    parent or link is dangling: the parent may still be on its way). At the deadline a flow is
    returned as it stands, with what was still missing, for the checks to explain."""
    interval = system.target.settle_s
    started = time.monotonic()
    watches = [
        _Watch(Settled(tid, exp, {}, ["any span"], 0.0), started=started, changed=started)
        for tid, exp in wanted
    ]
    services = sorted({name for _, exp in wanted for name in exp.services})
    follow = system.target.consumer_relation == "link" and any(exp.hops for _, exp in wanted)

    def one_round() -> list[_Watch]:
        linked: dict[str, list[Span]] = {}
        if follow:
            for service in services:
                linked.update(
                    system.traces.search(service, since - WINDOW_SLACK_S, time.time() + 1)
                )
        now = time.monotonic()
        for watch in (w for w in watches if not w.done):
            _observe(system, watch, linked, now, interval)
        return watches

    with contextlib.suppress(PollTimeout):  # each Settled says what was still missing
        poll(
            one_round,
            until=lambda ws: all(w.done for w in ws),
            timeout=timeout + 3 * interval,
            describe=f"{len(wanted)} trace(s) to settle ({interval:.1f}s without new spans)",
        )
    return [w.settled for w in watches]


def _observe(
    system: System, watch: _Watch, linked: dict[str, list[Span]], now: float, settle: float
) -> None:
    trace_id, expectation = watch.settled.trace_id, watch.settled.expectation
    traces = follow_links(trace_id, {**linked, trace_id: fetch_trace(system, trace_id)})
    traces = {tid: spans for tid, spans in traces.items() if spans}
    seen = signature(traces)
    if seen != watch.seen:
        watch.seen, watch.changed = seen, now
    missing = missing_structure(flow_spans(traces), expectation) if traces else ["any span"]
    findings = analyse_flow(traces, expectation) if traces else []
    dangling = any(f.code == FindingCode.ORPHAN for f in findings)
    quiet = now - watch.changed >= settle * (3 if dangling else 1)
    watch.done = not missing and quiet
    watch.settled = replace(
        watch.settled,
        traces=traces,
        missing=missing or ([] if quiet else [f"{settle:.1f}s without new spans"]),
        waited_s=now - watch.started,
    )


@dataclass
class Flow:
    """A user-creation flow: the request and everything it caused."""

    call: Call
    user_id: object
    settled: Settled  # the request's trace and the traces linked to it
    strays: dict[str, list[Span]]  # traces the flow's services began in its window, unlinked
    messages: list[TappedMessage] = field(default_factory=list)
    ended: float = 0.0

    @property
    def trace_id(self) -> str:
        return self.call.trace_id or ""

    @property
    def expectation(self) -> Expectation:
        return self.settled.expectation

    @property
    def traces(self) -> dict[str, list[Span]]:
        return self.settled.traces

    @property
    def spans(self) -> list[Span]:
        """Every span of the flow: its trace's and those of the traces linked to it."""
        return self.settled.spans


def user_flow(system: System, driver: Driver) -> Flow:
    """POST /api/users with traceparent + tracestate; settle its traces, gather the window's
    other traces and the flow's NATS messages."""
    subjects = list(system.target.subjects.values())
    with NatsTap(system.nats_url, subjects) if system.nats_url else _NoTap() as tap:
        call = create_user(driver, headers={"tracestate": TRACESTATE})
        user_id = call.body.get("id") if isinstance(call.body, dict) else None
        (settled,) = settle_calls(system, [call])
        window = gather_window(system, call.started, settled.expectation.services)
        strays = {tid: spans for tid, spans in window.items() if tid not in settled.traces}
        messages = _flow_messages(tap.snapshot(), call, user_id)
    return Flow(call, user_id, settled, strays, messages, ended=time.time())


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
    """The spans of one request's trace once settled: a SERVER span present and nothing new
    for the settle interval (or the trace as it stands at the deadline, maybe empty)."""
    (settled,) = settle(system, [(trace_id or "", Expectation(services=()))], timeout=timeout)
    return settled.spans


def server_traces_between(
    system: System, service: str, started: float, ended: float
) -> dict[str, list[Span]]:
    """The traces holding a SERVER span of `service` that began while a request was in flight
    (epoch s): where a request landed when the suite does not know its trace id (a restarted
    trace, from a service that sends no `traceresponse`)."""
    found = system.traces.search(service, started - 4 * WINDOW_SLACK_S, time.time() + 1)
    return {
        trace_id: spans
        for trace_id, spans in found.items()
        if any(
            s.kind == "SERVER"
            and s.service == service
            and started - WINDOW_SLACK_S <= s.start_ns / 1e9 <= ended + WINDOW_SLACK_S
            for s in spans
        )
    }
