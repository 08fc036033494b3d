"""Flows as linked traces: assembling them, their structure, roots and dangling links
(constructed spans, no stack needed)."""

from __future__ import annotations

from dataclasses import replace

from obsconf.conformance.traces.flow import follow_links, missing_structure, signature
from obsconf.conformance.traces.model import Link
from obsconf.conformance.traces.rules import analyse_flow, counted_roots
from tests.test_trace_analysis import EXP, LINKED, OTHER, TRACE, healthy, variant

THIRD = "c" * 32


def linked_flow() -> dict[str, list]:
    """The healthy chain as a link-mode implementation exports it: each consumer roots a new
    trace whose consume span links to the publish span."""
    spans = variant(
        o1={"parent_span_id": "", "links": (Link(TRACE, "u3"),), "trace_id": OTHER},
        o2={"trace_id": OTHER},
        o3={"trace_id": OTHER},
        i1={"parent_span_id": "", "links": (Link(OTHER, "o3"),), "trace_id": THIRD},
        i2={"trace_id": THIRD},
    )
    traces: dict[str, list] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    return traces


def test_follow_links_gathers_transitively_linked_traces_only() -> None:
    unrelated = [replace(healthy()[0], trace_id="d" * 32, span_id="x1")]
    pool = {**linked_flow(), "d" * 32: unrelated}
    flow = follow_links(TRACE, pool)
    assert list(flow) == [TRACE, OTHER, THIRD]


def test_a_linked_flow_is_whole_and_has_one_counted_root() -> None:
    traces = linked_flow()
    spans = [s for t in traces.values() for s in t]
    assert missing_structure(spans, LINKED) == []
    assert analyse_flow(traces, LINKED) == []
    assert [s.span_id for s in counted_roots(spans, LINKED)] == ["u1"]
    # declared parent: the same spans have three roots
    assert [s.span_id for s in counted_roots(spans, EXP)] == ["u1", "o1", "i1"]


def test_missing_structure_names_what_is_absent() -> None:
    missing = missing_structure(variant(i1=None, i2=None, u1=None), EXP)
    assert missing == [
        "the user-service SERVER span",
        "a span of inventory-service",
        "a consume span on order.created",
    ]


def test_a_link_to_an_unexported_span_is_an_orphan() -> None:
    traces = linked_flow()
    traces[TRACE] = [s for s in traces[TRACE] if s.span_id != "u3"]  # publish span never exported
    findings = analyse_flow(traces, LINKED)
    assert ("orphan", "o1") in [(f.code, f.span_id) for f in findings]
    assert "links to span u3" in next(f for f in findings if f.code == "orphan").message
    spans = [s for t in traces.values() for s in t]  # an orphan link, as a parent would be:
    assert [s.span_id for s in counted_roots(spans, LINKED)] == ["u1"]  # not a second root


def test_a_consume_span_before_the_span_it_links_to_is_early() -> None:
    traces = linked_flow()
    traces[OTHER] = [
        replace(s, start_ns=s.start_ns - int(2e9)) if s.span_id == "o1" else s
        for s in traces[OTHER]
    ]
    codes = [(f.code, f.span_id) for f in analyse_flow(traces, LINKED)]
    assert ("child-before-parent", "o1") in codes


def test_signature_changes_when_a_span_ends_later() -> None:
    traces = linked_flow()
    later = {k: [replace(s, end_ns=s.end_ns + 1) for s in v] for k, v in traces.items()}
    assert signature(traces) == signature(linked_flow())
    assert signature(traces) != signature(later)
