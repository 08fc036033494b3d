"""RES: hostile input and dependency outages neither crash a service nor lose what it accepted."""

from __future__ import annotations

import json
import secrets

import pytest

from conformance.driver import Driver
from conformance.hostile import Hostile, hostile_requests, judge
from conformance.scenarios import poll_trace_ready
from conformance.system import System
from stack.waiting import PollTimeout, poll


def _text(body: object) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def _leftover(driver: Driver, case: Hostile) -> str | None:
    """What `case` left behind, found through the contract's own lookup (None: nothing)."""
    if case.leftover is None:
        return None
    lookup = driver.call(case.leftover.role, "GET", case.leftover.path, route=case.leftover.route)
    if lookup.status != 200 or lookup.body == []:
        return None
    return f"stored anyway: {lookup.describe()} found {_text(lookup.body)[:200]}"


@pytest.mark.guarantee("RES-HOSTILE-INPUT-4XX")
def test_res_hostile_input_4xx(system: System, driver: Driver, evidence) -> None:
    tag = secrets.token_hex(6)
    cases = hostile_requests(tag, user_id=900_000_000 + secrets.randbelow(99_000_000))
    problems, seen = [], []
    for case in cases:
        call = driver.call(
            case.role, case.method, case.path, route=case.route, content=case.content()
        )
        seen.append(f"{case.describe()} -> {call.status}")
        problem = judge(case, call.status, _text(call.body)) or _leftover(driver, case)
        if problem:
            problems.append(f"{case.describe()}: {problem} (trace {call.trace_id})")
    email = f"hostile-{tag}@example.com"
    retry = driver.call("user", "POST", "/api/users", json={"name": "Ada", "email": email})
    if retry.status == 409:
        problems.append(
            f"a user with {email} was stored by a refused request (409 on a clean POST)"
        )
    for role in system.urls:
        try:
            poll(
                lambda role=role: driver.call(role, "GET", "/health", traced=False).status,
                until=lambda status: status == 200,
                timeout=10,
                describe=f"{system.names[role]} /health to answer 200 after the hostile requests",
            )
        except PollTimeout as error:
            problems.append(str(error))
    evidence(
        kind="compare",
        check="every hostile request answered without a 5xx, a 4xx naming the field for bodies",
        query=f"{len(cases)} hostile requests (tag {tag})",
        expected="4xx naming the field, nothing stored, every service healthy",
        seen=seen,
    )
    if problems:
        pytest.fail(
            f"{len(problems)} of {len(cases)} hostile requests mishandled:\n" + "\n".join(problems)
        )


# After a large body, a plain request on the same connection, per service.
FOLLOW_UPS = {
    "user": ("/api/users?limit=1", "/api/users"),
    "order": ("/api/orders/no-such-order", "/api/orders/{id}"),
    "inventory": ("/api/stock-levels?sku=NO-SUCH-SKU", "/api/stock-levels"),
}


@pytest.mark.guarantee("RES-LARGE-BODY-NO-MERGE")
def test_res_large_body_no_merge(system: System, driver: Driver, evidence) -> None:
    oversized = {
        c.role: c
        for c in hostile_requests(secrets.token_hex(6), 1)
        if c.field and len(c.content() or b"") > 1_000_000
    }
    problems, seen = [], []
    for role, (path, route) in FOLLOW_UPS.items():
        case = oversized[role]
        driver.call(role, case.method, case.path, route=case.route, content=case.content())
        call = driver.call(role, "GET", path, route=route)  # same keep-alive connection
        service = system.names[role]
        spans = poll_trace_ready(system, call.sent_trace_id)
        servers = [s for s in spans if s.kind == "SERVER" and s.service == service]
        seen.append(f"{call.describe()}: {[s.describe() for s in servers]}")
        if not any(s.parent_span_id == call.client_span_id for s in servers):
            problems.append(
                f"{call.describe()} after {case.describe()}: no SERVER span of {service} with "
                f"the client span {call.client_span_id} as parent in the trace it sent "
                f"{call.sent_trace_id} (found {[s.describe() for s in spans]}; the answer's "
                f"traceresponse names trace {call.trace_id})"
            )
    evidence(
        kind="compare",
        check="the request after a 1 MiB body continues its own traceparent",
        query="; ".join(f"{role}: {path}" for role, (path, _) in FOLLOW_UPS.items()),
        expected="a SERVER span whose parent is the client span, in the trace sent",
        seen=seen,
    )
    if problems:
        pytest.fail("\n".join(problems))
