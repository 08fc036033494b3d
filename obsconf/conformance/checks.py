"""Assertions shared by the conformance tests: each failure explains itself.

A trace failure carries the gap in one sentence, the span tree with the gap marked and the
trace URL; a count failure carries the query and both numbers. Every check also records its
evidence on the test (for the JSON results and the HTML report).
"""

from __future__ import annotations

from typing import Any

from obsconf.conformance.evidence import CompareEvidence, Recorder, TraceEvidence
from obsconf.conformance.scenarios import Flow
from obsconf.conformance.traces.findings import Finding, FindingCode, gap_summary
from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.render import render_tree
from obsconf.conformance.traces.rules import analyse_flow


def flow_findings(flow: Flow) -> list[Finding]:
    """Findings over the flow's traces (its own and those linked to it) and every other trace
    its services began in its window (so a consumer that started an unlinked trace is seen,
    not just missed)."""
    return analyse_flow({**flow.strays, **flow.traces}, flow.expectation)


def flow_spans(flow: Flow) -> list[Span]:
    """The flow's spans first, then those of the window's unlinked traces."""
    return [*flow.spans, *(s for spans in flow.strays.values() for s in spans)]


def check_findings(
    flow: Flow,
    codes: set[str],
    evidence: Recorder,
    what: str,
    findings: list[Finding] | None = None,
) -> None:
    """Fail when any finding with one of `codes` is present, showing the tree and the gap.

    A code that `analyse_flow` never produces is refused (ValueError): a misspelt code would
    make the check pass whatever the trace looks like."""
    unknown = sorted(set(codes) - set(FindingCode))
    if unknown:
        raise ValueError(
            f"check_findings({what!r}): unknown finding code(s) {', '.join(unknown)}; "
            f"known: {', '.join(FindingCode)}"
        )
    findings = flow_findings(flow) if findings is None else findings
    relevant = [f for f in findings if f.code in codes]
    evidence(
        TraceEvidence(
            check=what,
            trace_id=flow.trace_id,
            request=flow.call.describe(),
            findings=tuple(relevant),
            gap=gap_summary(relevant) if relevant else "",
            spans=tuple(flow_spans(flow)),
        )
    )
    if relevant:
        raise AssertionError(
            f"{what}: {gap_summary(relevant)}\n"
            f"likely cause: {relevant[0].likely_cause}\n"
            f"request: {flow.call.describe()}\n"
            f"{render_tree(flow_spans(flow), relevant)}"
        )


def check_equal(what: str, query: str, expected: Any, seen: Any, evidence: Recorder) -> None:
    """Fail unless expected == seen; the message names the query and both sides."""
    evidence(CompareEvidence(check=what, query=query, expected=expected, seen=seen))
    if expected != seen:
        raise AssertionError(
            f"{what}\n  query:    {query}\n  expected: {expected}\n  seen:     {seen}"
        )
