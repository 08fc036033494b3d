"""RES: hostile input and dependency outages neither crash a service nor lose what it accepted."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from functools import partial

import pytest

from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.evidence import CompareEvidence, Recorder
from obsconf.conformance.hostile import Hostile, hostile_requests, judge
from obsconf.conformance.logs import describe_lines, request_lines
from obsconf.conformance.outage import (
    DEFAULT_OUTAGE_S,
    DEPENDENCY,
    CannotCut,
    Outage,
    run_nats_outage,
    run_outage,
)
from obsconf.conformance.scenarios import poll_trace_ready, settle
from obsconf.conformance.system import System
from obsconf.conformance.traces.expectation import Expectation, expectation_from_target
from obsconf.conformance.traces.findings import gap_summary
from obsconf.conformance.traces.rules import analyse_flow
from obsconf.stack.waiting import PollTimeout, poll

DEPENDENCY_TIMEOUT_S = 10.0  # a request during an outage must be answered within this
RESERVED_TIMEOUT_S = 60.0  # after the outage, for every accepted order to be reserved
ERROR_LEVELS = ("error", "err", "critical", "fatal")
# Findings that mean a flow's trace is no longer one connected trace.
BREAKS = ("orphan", "multiple-roots", "consumer-root", "no-spans")


def _text(body: object) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def _health_status(driver: Driver, role: str) -> int:
    return driver.call(role, "GET", "/health", traced=False).status


def _leftover(driver: Driver, case: Hostile) -> str | None:
    """What `case` left behind, found through the contract's own lookup (None: nothing)."""
    if case.leftover is None:
        return None
    lookup = driver.call(case.leftover.role, "GET", case.leftover.path, route=case.leftover.route)
    if lookup.status != 200 or lookup.body == []:
        return None
    return f"stored anyway: {lookup.describe()} found {_text(lookup.body)[:200]}"


@pytest.mark.guarantee("RES-HOSTILE-INPUT-4XX")
def test_res_hostile_input_4xx(
    obsconf_system: System, obsconf_driver: Driver, obsconf_evidence: Recorder
) -> None:
    tag = secrets.token_hex(6)
    cases = hostile_requests(tag, user_id=900_000_000 + secrets.randbelow(99_000_000))
    problems, seen = [], []
    for case in cases:
        call = obsconf_driver.call(
            case.role, case.method, case.path, route=case.route, content=case.content()
        )
        seen.append(f"{case.describe()} -> {call.status}")
        problem = judge(case, call.status, _text(call.body)) or _leftover(obsconf_driver, case)
        if problem:
            problems.append(f"{case.describe()}: {problem} (trace {call.trace_id})")
    email = f"hostile-{tag}@example.com"
    retry = obsconf_driver.call("user", "POST", "/api/users", json={"name": "Ada", "email": email})
    if retry.status == 409:
        problems.append(
            f"a user with {email} was stored by a refused request (409 on a clean POST)"
        )
    for role in obsconf_system.urls:
        try:
            poll(
                partial(_health_status, obsconf_driver, role),
                until=lambda status: status == 200,
                timeout=10,
                describe=f"{obsconf_system.names[role]} /health to answer 200 "
                "after the hostile requests",
            )
        except PollTimeout as error:
            problems.append(str(error))
    obsconf_evidence(
        CompareEvidence(
            check="every hostile request answered without a 5xx, a 4xx naming the field for bodies",
            query=f"{len(cases)} hostile requests (tag {tag})",
            expected="4xx naming the field, nothing stored, every service healthy",
            seen=seen,
        )
    )
    if problems:
        pytest.fail(
            f"{len(problems)} of {len(cases)} hostile requests mishandled:\n" + "\n".join(problems)
        )


# After a large body, a plain request on the same connection, per service, ROUNDS times (whether
# a leaked context reaches the next request depends on how the body arrived: one try may miss).
ROUNDS = 3
FOLLOW_UPS = {
    "user": ("/api/users?limit=1", "/api/users"),
    "order": ("/api/orders/no-such-order", "/api/orders/{id}"),
    "inventory": ("/api/stock-levels?sku=NO-SUCH-SKU", "/api/stock-levels"),
}


@pytest.mark.guarantee("RES-LARGE-BODY-NO-MERGE")
def test_res_large_body_no_merge(
    obsconf_system: System, obsconf_driver: Driver, obsconf_evidence: Recorder
) -> None:
    oversized = {
        c.role: c
        for c in hostile_requests(secrets.token_hex(6), 1)
        if c.field and len(c.content() or b"") > 1_000_000
    }
    problems, seen, calls = [], [], []
    for _ in range(ROUNDS):
        for role, (path, route) in FOLLOW_UPS.items():
            case = oversized[role]
            obsconf_driver.call(
                role, case.method, case.path, route=case.route, content=case.content()
            )
            calls.append(
                (case, obsconf_driver.call(role, "GET", path, route=route))
            )  # same connection
    wanted = [(call.sent_trace_id or "", Expectation(services=())) for _, call in calls]
    for (case, call), settled in zip(
        calls, settle(obsconf_system, wanted, timeout=10.0), strict=True
    ):
        service = obsconf_system.names[call.role]
        servers = [s for s in settled.spans if s.kind == "SERVER" and s.service == service]
        seen.append(f"{call.describe()}: {[s.describe() for s in servers]}")
        if not any(s.parent_span_id == call.client_span_id for s in servers):
            problems.append(
                f"{call.describe()} after {case.describe()}: no SERVER span of {service} with "
                f"the client span {call.client_span_id} as parent in the trace it sent "
                f"{call.sent_trace_id} (found {[s.describe() for s in settled.spans]}; the "
                f"answer's traceresponse names trace {call.trace_id})"
            )
    obsconf_evidence(
        CompareEvidence(
            check="the request after a 1 MiB body continues its own traceparent",
            query="; ".join(f"{role}: {path}" for role, (path, _) in FOLLOW_UPS.items()),
            expected="a SERVER span whose parent is the client span, in the trace sent",
            seen=seen,
        )
    )
    if problems:
        pytest.fail("\n".join(problems))


def _outage_seconds(config: pytest.Config) -> float:
    return config.getoption("--outage-seconds") or DEFAULT_OUTAGE_S


@pytest.fixture(scope="module")
def outage(obsconf_system: System, pytestconfig: pytest.Config) -> Outage:
    """One PostgreSQL outage under traffic, judged by the tests below."""
    driver = obsconf_system.driver(timeout=DEPENDENCY_TIMEOUT_S)
    try:
        return run_outage(obsconf_system, driver, _outage_seconds(pytestconfig))
    except CannotCut as error:
        pytest.fail(str(error), pytrace=False)
    finally:
        driver.close()


@pytest.mark.guarantee("RES-OUTAGE-503")
def test_res_outage_503(obsconf_system: System, outage: Outage, obsconf_evidence: Recorder) -> None:
    call = outage.user_call
    assert call is not None
    obsconf_evidence(
        CompareEvidence(
            check="POST /api/users while PostgreSQL is down",
            query=call.describe(),
            expected=f"503 within {DEPENDENCY_TIMEOUT_S:g} s, SERVER span ERROR, "
            "an error line with the trace_id",
            seen=f"{call.status} after {call.ended - call.started:.1f} s",
        )
    )
    assert call.status == 503, f"{call.describe()} while {DEPENDENCY} was down: expected 503"
    service = obsconf_system.names["user"]
    spans = poll_trace_ready(obsconf_system, call.trace_id)
    servers = [s for s in spans if s.kind == "SERVER" and s.service == service]
    assert any(s.status == "ERROR" for s in servers), (
        f"{call.describe()}: no SERVER span of {service} with status ERROR "
        f"(found {[f'{s.describe()}: {s.status}' for s in servers]})"
    )
    errors = [
        ln
        for ln in request_lines(obsconf_system, call)
        if str(ln.get("level", "")).lower() in ERROR_LEVELS
    ]
    assert any(ln.get("trace_id") == call.trace_id for ln in errors), (
        f"{call.describe()}: no error-level line of {service} with trace_id {call.trace_id} "
        f"while it was in flight:\n{describe_lines(errors)}"
    )


def order_expectation(system: System, call: Call) -> Expectation:
    """An order's flow: order-service, then inventory-service over order_created."""
    full = expectation_from_target(system.target)
    order, inventory = system.names["order"], system.names["inventory"]
    return replace(
        full,
        services=(order, inventory),
        hops=tuple(h for h in full.hops if h.producer_service == order),
        external_parents=frozenset({call.client_span_id}) if call.client_span_id else frozenset(),
    )


@pytest.mark.guarantee("RES-OUTAGE-NO-LOST-EVENT")
def test_res_outage_no_lost_event(
    obsconf_system: System, obsconf_driver: Driver, outage: Outage, obsconf_evidence: Recorder
) -> None:
    accepted = outage.accepted
    assert accepted, (
        f"no order was accepted during the outage: {[c.describe() for c in outage.orders]}"
    )

    def reservations() -> dict[str, dict[str, int]]:
        found = {}
        for order_id in outage.skus:
            call = obsconf_driver.call(
                "inventory",
                "GET",
                f"/api/reservations?order_id={order_id}",
                route="/api/reservations",
            )
            rows = call.body if call.status == 200 and isinstance(call.body, list) else []
            per_sku: dict[str, int] = {}
            for row in rows:
                per_sku[row.get("sku")] = per_sku.get(row.get("sku"), 0) + int(row.get("qty", 0))
            found[order_id] = per_sku
        return found

    try:
        found = poll(
            reservations,
            until=lambda got: got == outage.skus,
            timeout=RESERVED_TIMEOUT_S,
            describe=f"the reservations of the {len(accepted)} orders accepted during the outage",
        )
    except PollTimeout:
        found = reservations()
    lost = [oid for oid, skus in found.items() if not skus]
    wrong = {oid: skus for oid, skus in found.items() if skus and skus != outage.skus[oid]}
    settled = settle(
        obsconf_system, [(c.trace_id or "", order_expectation(obsconf_system, c)) for c in accepted]
    )
    broken = {
        s.trace_id: gap_summary(findings)
        for s in settled
        if (findings := [f for f in analyse_flow(s.traces, s.expectation) if f.code in BREAKS])
    }
    obsconf_evidence(
        CompareEvidence(
            check=f"orders accepted during a {outage.seconds:g} s {DEPENDENCY} outage, reserved",
            query=f"GET /api/reservations?order_id=... for {len(accepted)} orders",
            expected=f"{len(accepted)} reserved exactly once, each trace connected",
            seen=f"{len(accepted) - len(lost)} reserved, {len(lost)} lost, {len(wrong)} wrong, "
            f"{len(broken)} broken traces",
        )
    )
    problems = [f"order {oid}: never reserved (its event was lost)" for oid in lost]
    problems += [
        f"order {oid}: reserved {skus}, expected {outage.skus[oid]}" for oid, skus in wrong.items()
    ]
    problems += [f"trace {tid}: {gap}" for tid, gap in broken.items()]
    if problems:
        pytest.fail(
            f"{len(accepted)} orders accepted during a {outage.seconds:g} s {DEPENDENCY} outage:\n"
            + "\n".join(problems)
        )


@pytest.mark.guarantee("RES-NATS-OUTAGE-NO-LOST-EVENT")
def test_res_nats_outage_no_lost_event(
    obsconf_system: System,
    obsconf_driver: Driver,
    pytestconfig: pytest.Config,
    obsconf_evidence: Recorder,
) -> None:
    try:
        calls = run_nats_outage(obsconf_system, obsconf_driver, _outage_seconds(pytestconfig))
    except CannotCut as error:
        pytest.fail(str(error), pytrace=False)
    accepted = {c.body["id"]: c for c in calls if c.status == 201 and isinstance(c.body, dict)}
    assert accepted, f"no user was accepted while NATS was down: {[c.describe() for c in calls]}"

    def welcome_orders() -> dict[object, int]:
        counts = {}
        for user_id in accepted:
            call = obsconf_driver.call(
                "order", "GET", f"/api/orders?user_id={user_id}", route="/api/orders"
            )
            found = call.body if call.status == 200 and isinstance(call.body, list) else []
            counts[user_id] = sum(1 for o in found if o.get("kind") == "welcome")
        return counts

    try:
        counts = poll(
            welcome_orders,
            until=lambda got: all(n == 1 for n in got.values()),
            timeout=RESERVED_TIMEOUT_S,
            describe=f"a welcome order for each of the {len(accepted)} users created without NATS",
        )
    except PollTimeout:
        counts = welcome_orders()
    wrong = {uid: n for uid, n in counts.items() if n != 1}
    obsconf_evidence(
        CompareEvidence(
            check="welcome orders of the users created while NATS was down",
            query=f"GET /api/orders?user_id=... for {len(accepted)} users",
            expected=f"{len(accepted)} users with exactly one welcome order each",
            seen=f"{len(accepted) - len(wrong)} with one, {len(wrong)} without exactly one",
        )
    )
    if wrong:
        pytest.fail(
            f"{len(accepted)} users created while NATS was down; welcome orders per user "
            f"(expected 1 each): " + ", ".join(f"user {uid}: {n}" for uid, n in wrong.items())
        )
