"""The W3C Trace Context case tables (conformance/test_w3c.py) against the reference
propagator, without a stack: each case as the recommendation requires, and each propagation
fault breaking the cases it is meant to break."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import asgi_getter

from obsconf.conformance.w3c import (
    CONTINUE,
    DISCARD,
    KEEP,
    TRACEPARENT_CASES,
    TRACESTATE_CASES,
    VALID_ONLY,
    Ids,
    TracestateCase,
    discarded_problem,
    kept_problem,
    list_problem,
    members,
    traceparent_problem,
)
from obsconf.reference_services import faults
from obsconf.reference_services.telemetry.propagation import TraceContextPropagator


@pytest.fixture
def fault() -> Iterator:
    """`fault(name)` switches one fault on for the test; all are off again after it."""
    yield faults.configure
    faults.configure("")


def extract(fields: list[tuple[str, str]]) -> trace.SpanContext:
    """What the reference makes of these request header fields, as an ASGI server hands them
    on (names lower-cased, whitespace around values removed)."""
    scope = {"headers": [(n.lower().encode(), v.strip(" \t").encode()) for n, v in fields]}
    context = TraceContextPropagator().extract(scope, getter=asgi_getter)
    return trace.get_current_span(context).get_span_context()


def handled(fields: list[tuple[str, str]], ids: Ids) -> str:
    parent = extract(fields)
    continued = parent.is_valid and (parent.trace_id, parent.span_id) == (
        int(ids.t, 16),
        int(ids.p, 16),
    )
    return CONTINUE if continued else "restart"


@pytest.mark.parametrize("case", TRACEPARENT_CASES, ids=lambda c: c.name)
def test_reference_handles_traceparent_case(case) -> None:
    ids = Ids.fresh()
    assert handled(case.render(ids), ids) == case.required, case.render(ids)


def test_lenient_traceparent_continues_invalid_cases(fault) -> None:
    fault("lenient-traceparent")
    ids = Ids.fresh()
    wrong = {c.name for c in TRACEPARENT_CASES if handled(c.render(ids), ids) != c.required}
    assert {"two traceparent fields", "version ff", "upper-case trace-id"} <= wrong


def passed_on(case: TracestateCase, ids: Ids) -> list[tuple[str, str]]:
    state = extract(case.render(ids)).trace_state
    return members([state.to_header()] if state else [])


def problem(case: TracestateCase, ids: Ids) -> str | None:
    sent = members(case.tracestate)
    out = passed_on(case, ids)
    if case.required == KEEP:
        return kept_problem(sent, out)
    if case.required == DISCARD:
        return discarded_problem(sent, out)
    return list_problem(out)


@pytest.mark.parametrize("case", TRACESTATE_CASES, ids=lambda c: c.name)
def test_reference_handles_tracestate_case(case) -> None:
    assert problem(case, Ids.fresh()) is None


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("first-tracestate-only", {"three fields", "32 members in four fields"}),
        ("lenient-tracestate", {"33 members", "upper-case key", "duplicated key", "value with ="}),
    ],
)
def test_tracestate_faults_break_their_cases(fault, name: str, broken: set[str]) -> None:
    fault(name)
    ids = Ids.fresh()
    assert broken <= {c.name for c in TRACESTATE_CASES if problem(c, ids)}


def test_members_combine_fields_and_drop_whitespace_and_empties() -> None:
    assert members(["a=1 \t, b=2", "", " ,c=x=y"]) == [("a", "1"), ("b", "2"), ("c", "x=y")]


def test_kept_allows_own_members_first_and_truncation_to_32() -> None:
    sent = [(f"k{i}", "v") for i in range(32)]
    assert kept_problem(sent, [("mine", "1"), *sent[:31]]) is None
    assert kept_problem(sent, [("k3", "new"), *[m for m in sent if m[0] != "k3"]]) is None
    assert kept_problem(sent, sent[1:]) is not None
    assert kept_problem([("a", "1"), ("b", "2")], [("b", "2"), ("a", "1")]) is not None


def test_list_problem_names_what_is_invalid() -> None:
    assert list_problem([("foo", "1"), ("bar@v", " x")]) is None
    assert "more than 32" in (list_problem([(f"k{i}", "v") for i in range(33)]) or "")
    assert "foo" in (list_problem([("foo", "1"), ("foo", "2")]) or "")
    assert "FOO=1" in (list_problem([("FOO", "1")]) or "")
    assert "foo=" in (list_problem([("foo", "")]) or "")


def test_every_case_is_required_one_way() -> None:
    assert {c.required for c in TRACEPARENT_CASES} == {CONTINUE, "restart"}
    assert {c.required for c in TRACESTATE_CASES} == {KEEP, DISCARD, VALID_ONLY}


FLOW = "a" * 32


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"traceparent": f"00-{FLOW}-{'b' * 16}-01"}, None),
        ({"traceparent": f"00-{FLOW}-{'b' * 16}-03"}, None),  # level-2 random bit beside sampled
        ({"Traceparent": f"00-{FLOW}-{'b' * 16}-01"}, "header names are case-sensitive"),
        ({}, "no traceparent header"),
        ({"traceparent": f"00-{FLOW}-{'b' * 16}-00"}, "sampled flag off"),
        ({"traceparent": f"00-{'c' * 32}-{'b' * 16}-01"}, "not a trace of the flow"),
        ({"traceparent": "00-zz-01"}, "not a valid version-00 traceparent"),
    ],
)
def test_nats_traceparent_problems(headers: dict[str, str], problem: str | None) -> None:
    found = traceparent_problem(headers, [FLOW])
    assert (found is None) if problem is None else (problem in (found or "")), found
