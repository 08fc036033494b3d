"""Trace-graph analysis and rendering on constructed spans (no stack needed)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from obsconf.conformance.target import load_target
from obsconf.conformance.traces.expectation import Expectation, Hop, expectation_from_target
from obsconf.conformance.traces.findings import Finding, FindingCode, gap_summary
from obsconf.conformance.traces.model import Link, Span, parse_otlp_json
from obsconf.conformance.traces.render import ORPHANS_HEADING, render_span_line, render_tree
from obsconf.conformance.traces.rules import analyse, analyse_flow
from obsconf.conformance.traces.semconv import messaging_role
from obsconf.conformance.traces.tree import build_tree

ROOT = Path(__file__).resolve().parent.parent
TRACE, OTHER = "a" * 32, "b" * 32
USER, ORDER, INVENTORY = "user-service", "order-service", "inventory-service"
EXP = Expectation(
    services=(USER, ORDER, INVENTORY),
    hops=(Hop("user.created", USER, ORDER), Hop("order.created", ORDER, INVENTORY)),
)
LINKED = replace(EXP, consumer_relation="link")


def make_span(
    span_id: str,
    parent: str,
    name: str,
    kind: str,
    service: str,
    start_ms: float,
    end_ms: float | None = None,
    trace_id: str = TRACE,
    **attributes: object,
) -> Span:
    """A span; attribute keywords use `_` for `.` (http_route -> http.route)."""
    end = start_ms + 5 if end_ms is None else end_ms
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=kind,
        service=service,
        start_ns=int(start_ms * 1e6),
        end_ns=int(end_ms * 1e6) if end_ms is not None else int(end * 1e6),
        attributes={k.replace("_", "."): v for k, v in attributes.items()},
    )


def nats(operation: str, subject: str) -> dict[str, str]:
    return {
        "messaging_system": "nats",
        "messaging_destination_name": subject,
        "messaging_operation": operation,
    }


def healthy() -> list[Span]:
    """user SERVER → db → publish user.created → order consume → mongo → publish order.created
    → inventory consume → db, all in one trace."""
    http = {"http_request_method": "POST", "http_route": "/api/users"}
    return [
        make_span(
            "u1",
            "",
            "POST /api/users",
            "SERVER",
            USER,
            0,
            100,
            **http,
            http_response_status_code=201,
        ),
        make_span("u2", "u1", "INSERT users", "CLIENT", USER, 5, db_system="postgresql"),
        make_span(
            "u3",
            "u1",
            "publish user.created",
            "PRODUCER",
            USER,
            12,
            **nats("publish", "user.created"),
        ),
        make_span(
            "o1",
            "u3",
            "process user.created",
            "CONSUMER",
            ORDER,
            20,
            60,
            **nats("process", "user.created"),
        ),
        make_span("o2", "o1", "insert orders", "CLIENT", ORDER, 25, db_system="mongodb"),
        make_span(
            "o3",
            "o1",
            "publish order.created",
            "PRODUCER",
            ORDER,
            35,
            **nats("publish", "order.created"),
        ),
        make_span(
            "i1",
            "o3",
            "process order.created",
            "CONSUMER",
            INVENTORY,
            40,
            80,
            **nats("process", "order.created"),
        ),
        make_span("i2", "i1", "UPDATE stock", "CLIENT", INVENTORY, 45, db_system="postgresql"),
    ]


def variant(**changes: dict[str, object] | None) -> list[Span]:
    """The healthy chain with some spans changed (`o1={"kind": "INTERNAL"}`) or dropped (None)."""
    spans = []
    for span in healthy():
        change = changes.get(span.span_id, {})
        if change is not None:
            spans.append(replace(span, **change))
    return spans


def split(spans: list[Span]) -> dict[str, list[Span]]:
    """Spans of order- and inventory-service moved into trace OTHER, as after a lost context."""
    moved = [replace(s, trace_id=OTHER) if s.service != USER else s for s in spans]
    return {
        TRACE: [s for s in moved if s.trace_id == TRACE],
        OTHER: [s for s in moved if s.trace_id == OTHER],
    }


def codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.span_id or f.service) for f in findings]


# --- healthy ---------------------------------------------------------------------------------


def test_healthy_chain_has_no_findings() -> None:
    assert analyse(healthy(), EXP) == []
    assert analyse(healthy()) == []
    assert analyse_flow({TRACE: healthy()}, EXP) == []
    assert analyse(healthy(), LINKED) == []  # a parented consumer is fine under "link" too
    assert gap_summary([]).startswith("No gap")


def test_order_is_deterministic_whatever_the_input_order() -> None:
    spans = variant(u3=None, i1={"kind": "INTERNAL"}, u1={"attributes": {"http.status_code": 500}})
    expected = analyse(spans, EXP)
    shuffled = spans[:]
    random.Random(7).shuffle(shuffled)
    assert analyse(shuffled, EXP) == expected
    assert all(isinstance(f.code, FindingCode) for f in expected)


def test_tree_roots_orphans_children_and_walk() -> None:
    tree = build_tree(variant(u3=None))
    assert [s.span_id for s in tree.roots] == ["u1"]
    assert [s.span_id for s in tree.orphans] == ["o1"]
    assert [s.span_id for s in tree.children["o1"]] == ["o2", "o3"]
    walked = [(s.span_id, depth) for s, depth in tree.walk()]
    assert walked[:2] == [("u1", 0), ("u2", 1)]
    assert walked[2:] == [("o1", 0), ("o2", 1), ("o3", 1), ("i1", 2), ("i2", 3)]


# --- each finding code -----------------------------------------------------------------------


def test_consumer_root_when_injection_is_missing() -> None:
    traces = split(variant(o1={"parent_span_id": ""}))
    assert codes(analyse(traces[TRACE], EXP)) == [
        ("missing-service", ORDER),
        ("missing-service", INVENTORY),
    ]
    (finding,) = analyse(traces[OTHER])
    assert (finding.code, finding.span_id, finding.service) == ("consumer-root", "o1", ORDER)
    assert "user.created" in finding.message and "traceparent" in finding.likely_cause


def test_flow_split_over_two_traces_reports_where_it_split() -> None:
    traces = split(variant(o1={"parent_span_id": ""}))
    findings = analyse_flow(traces, EXP)
    assert codes(findings) == [("consumer-root", "o1"), ("service-order", "o1")]
    text = render_tree([s for spans in traces.values() for s in spans], findings)
    assert f"[CONSUMER] 40.0 ms at +20.0 ms  [trace {OTHER}]  <-- GAP: order-service" in text
    summary = gap_summary(findings)
    assert summary.startswith("First gap: order-service consume span 'process user.created'")
    assert "user.created" in summary and "1 more finding" in summary


def test_flow_split_without_consume_span_is_a_new_root() -> None:
    # order-service created no consume span: its mongo span roots a new trace.
    traces = split(variant(o1=None, o2={"parent_span_id": ""}))
    findings = analyse_flow(traces, EXP)
    assert codes(findings)[0] == ("multiple-roots", "o2")
    first = findings[0]
    assert ORDER in first.message and "user.created" in first.message and OTHER in first.message


def test_multiple_roots_in_one_trace() -> None:
    spans = [*healthy(), make_span("x1", "", "GET /health", "SERVER", ORDER, 30)]
    (finding,) = analyse(spans, EXP)
    assert (finding.code, finding.span_id) == ("multiple-roots", "x1")
    assert "POST /api/users" in finding.message


def test_orphan_when_publish_span_is_absent() -> None:
    findings = analyse(variant(u3=None), EXP)
    assert codes(findings) == [("orphan", "o1"), ("service-order", "o1")]
    assert findings[0].likely_cause.startswith("the producer's publish span was never exported")
    assert gap_summary(findings).startswith("First gap: order-service span 'process user.created'")


def test_orphan_server_span_and_external_parent() -> None:
    spans = variant(u1={"parent_span_id": "cafecafecafecafe"})
    (finding,) = analyse(spans, EXP)
    assert (finding.code, finding.span_id) == ("orphan", "u1")
    assert "caller" in finding.likely_cause
    assert analyse(spans, replace(EXP, external_parents=frozenset({"cafecafecafecafe"}))) == []


def test_wrong_publish_kind_explains_the_consumer_parent() -> None:
    findings = analyse(variant(u3={"kind": "INTERNAL"}), EXP)
    assert codes(findings) == [("wrong-kind", "u3"), ("consumer-parent-not-producer", "o1")]
    assert "INTERNAL instead of PRODUCER" in findings[0].message
    assert "PRODUCER" in findings[1].likely_cause


def test_wrong_consume_kind_recognised_by_name() -> None:
    bare = {"kind": "INTERNAL", "attributes": {}}
    findings = analyse(variant(o1=bare), EXP)
    assert codes(findings) == [("wrong-kind", "o1")]
    assert "user.created" in findings[0].message and "CONSUMER" in findings[0].message


def test_consumer_parent_on_another_subject() -> None:
    wrong_subject = {"messaging.system": "nats", "messaging.destination.name": "order.created"}
    (finding,) = analyse(variant(o1={"attributes": wrong_subject}), EXP)
    assert (finding.code, finding.span_id) == ("consumer-parent-not-producer", "o1")
    assert "different subject, user.created" in finding.message


def test_link_relation_accepted_only_when_declared() -> None:
    linked = variant(o1={"parent_span_id": "", "links": (Link(TRACE, "u3"),)})
    traces = split(linked)
    assert analyse_flow(traces, LINKED) == []
    # Alone, the consumer's trace cannot show the linked span: a link to an unseen span passes.
    assert analyse(traces[OTHER], replace(LINKED, services=())) == []
    findings = analyse_flow(traces, EXP)
    assert codes(findings)[0] == ("consumer-root", "o1")
    assert "consumer_relation=parent" in findings[0].likely_cause


def test_link_to_a_non_producer_span() -> None:
    traces = split(variant(o1={"parent_span_id": "", "links": (Link(TRACE, "u2"),)}))
    findings = analyse_flow(traces, LINKED)
    assert codes(findings) == [("consumer-parent-not-producer", "o1")]
    assert "links to user-service span 'INSERT users' (CLIENT)" in findings[0].message


def test_link_relation_still_needs_a_link() -> None:
    findings = analyse_flow(split(variant(o1={"parent_span_id": ""})), LINKED)
    assert codes(findings)[0] == ("consumer-root", "o1")


def test_child_before_parent_beyond_tolerance_only() -> None:
    findings = analyse(variant(u2={"start_ns": int(-95e6)}), EXP)
    assert codes(findings) == [("child-before-parent", "u2")]
    assert "95.0 ms before its parent" in findings[0].message
    assert analyse(variant(o2={"start_ns": int(-10e6)}), EXP) == []  # 30 ms: within 50 ms


def test_service_order_when_a_service_starts_too_early() -> None:
    findings = analyse(variant(o1={"start_ns": int(-200e6)}), EXP)
    assert codes(findings) == [("service-order", "o1"), ("child-before-parent", "o1")]
    assert "before the first span of user-service" in findings[0].message


def test_missing_service() -> None:
    (finding,) = analyse(variant(i1=None, i2=None), EXP)
    assert (finding.code, finding.span_id, finding.service) == ("missing-service", "", INVENTORY)
    assert "order.created" in finding.likely_cause


def test_missing_service_name_points_at_the_resource() -> None:
    spans = [
        replace(s, service="unknown_service:python") if s.service == ORDER else s for s in healthy()
    ]
    (finding,) = analyse(spans, EXP)
    assert finding.code == "missing-service" and "service.name" in finding.likely_cause


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [(503, "UNSET", True), ("500", "OK", True), (503, "ERROR", False), (404, "UNSET", False)],
)
def test_error_without_status(code: object, status: str, expected: bool) -> None:
    spans = variant(u1={"attributes": {"http.response.status_code": code}, "status": status})
    findings = analyse(spans, EXP)
    assert codes(findings) == ([("error-without-status", "u1")] if expected else [])


def test_mixed_trace_ids_and_no_spans() -> None:
    spans = [replace(s, trace_id=OTHER) if s.service == INVENTORY else s for s in healthy()]
    findings = analyse(spans, EXP)
    assert codes(findings) == [("mixed-trace-ids", "i1")]
    assert codes(analyse([], EXP)) == [("no-spans", "")]
    assert codes(analyse_flow({TRACE: []}, EXP)) == [("no-spans", "")]


def test_messaging_role_prefers_what_the_span_says() -> None:
    assert (
        messaging_role(make_span("p", "", "publish user.created", "CLIENT", USER, 0)) == "publish"
    )
    assert (
        messaging_role(make_span("p", "", "user.created process", "SERVER", USER, 0)) == "consume"
    )
    assert messaging_role(make_span("p", "", "GET /api/process", "SERVER", USER, 0)) is None
    consumer = make_span("p", "", "handle", "CONSUMER", USER, 0)
    assert messaging_role(consumer) == "consume"
    assert (
        messaging_role(replace(consumer, attributes={"messaging.operation": "send"})) == "publish"
    )


def test_expectation_validation_and_from_target() -> None:
    with pytest.raises(ValueError, match="consumer_relation"):
        Expectation(services=(USER,), consumer_relation="sibling")  # type: ignore[arg-type]
    expectation = expectation_from_target(load_target(ROOT / "targets" / "reference.yaml"))
    assert expectation == EXP


# --- rendering -------------------------------------------------------------------------------


def test_render_healthy_tree_golden() -> None:
    assert render_tree(healthy()) == (
        "trace aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: 8 spans, 3 services, 100.0 ms\n"
        "user-service: POST /api/users [SERVER] 100.0 ms at +0.0 ms\n"
        "├─ user-service: INSERT users [CLIENT] 5.0 ms at +5.0 ms\n"
        "└─ user-service: publish user.created [PRODUCER] 5.0 ms at +12.0 ms\n"
        "   └─ order-service: process user.created [CONSUMER] 40.0 ms at +20.0 ms\n"
        "      ├─ order-service: insert orders [CLIENT] 5.0 ms at +25.0 ms\n"
        "      └─ order-service: publish order.created [PRODUCER] 5.0 ms at +35.0 ms\n"
        "         └─ inventory-service: process order.created [CONSUMER] 40.0 ms at +40.0 ms\n"
        "            └─ inventory-service: UPDATE stock [CLIENT] 5.0 ms at +45.0 ms\n"
        "findings: none\n"
    )


def test_render_marks_the_gap_on_the_orphan_line() -> None:
    spans = variant(u3=None)
    findings = analyse(spans, EXP)
    lines = render_tree(spans, findings).splitlines()
    marked = [line for line in lines if "<-- GAP:" in line]
    assert len(marked) == 1
    assert marked[0].startswith("order-service: process user.created [CONSUMER]")
    assert "(parent u3 not in trace)" in marked[0]
    assert lines.index(ORPHANS_HEADING) < lines.index(marked[0]) < lines.index("findings:")
    assert lines[-2].startswith("- [orphan] order-service span 'process user.created'")


def test_render_span_line_shows_error_status() -> None:
    span = replace(healthy()[0], status="ERROR", status_message="boom")
    assert render_span_line(span) == "user-service: POST /api/users [SERVER] 100.0 ms  ERROR: boom"
    assert render_span_line(span, trace_start_ns=-1_000_000).endswith("at +1.0 ms  ERROR: boom")


def test_render_collapses_a_thousand_siblings() -> None:
    root = make_span("r", "", "GET /api/users", "SERVER", USER, 0, 2000)
    queries = [
        make_span(f"q{i:04d}", "r", "SELECT users", "CLIENT", USER, 1 + i) for i in range(1000)
    ]
    publishes = [
        make_span(f"p{i}", "r", "publish user.created", "INTERNAL", USER, 1 + 2 * i)
        for i in range(3)
    ]
    spans = [root, *queries, *publishes]
    findings = analyse(spans)
    assert codes(findings) == [("wrong-kind", f"p{i}") for i in range(3)]
    flagged = Finding(FindingCode.CHILD_BEFORE_PARENT, "q0500", USER, "flagged query.", "test.")
    text = render_tree(spans, [*findings, flagged])
    lines = text.splitlines()
    assert len(lines) < 80
    assert "… 998 more `SELECT users` spans (user-service)" in text
    assert sum("<-- GAP:" in line for line in lines) == 4  # 3 publishes + q0500, never hidden
    assert text == render_tree(list(reversed(spans)), [*findings, flagged])


def test_render_survives_a_very_deep_trace() -> None:
    chain = [make_span("s0", "", "root", "SERVER", USER, 0, 5000)]
    chain += [make_span(f"s{i}", f"s{i - 1}", "step", "INTERNAL", USER, i) for i in range(1, 1500)]
    assert len(render_tree(chain).splitlines()) == 1 + 1500 + 1


# --- OTLP JSON round trip --------------------------------------------------------------------


def test_otlp_fixture_round_trips_into_the_analysis() -> None:
    document = json.loads((ROOT / "tests" / "data" / "otlp_trace.json").read_text())
    spans = parse_otlp_json(document["result"])
    assert len(spans) == 8
    assert {s.kind for s in spans} == {"SERVER", "CLIENT", "PRODUCER", "CONSUMER"}
    assert {s.status for s in spans} == {"UNSET", "OK"}
    root = build_tree(spans).roots[0]
    assert (root.service, root.span_id, root.attributes["http.response.status_code"]) == (
        USER,
        "a1a1a1a1a1a1a1a1",
        201,
    )
    assert analyse(spans, EXP) == []
    without_publish = [s for s in spans if s.name != "publish user.created"]
    findings = analyse(without_publish, EXP)
    assert codes(findings)[0] == ("orphan", "b1b1b1b1b1b1b1b1")
    assert "a3a3a3a3a3a3a3a3" in findings[0].message
