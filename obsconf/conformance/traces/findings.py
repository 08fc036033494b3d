"""Findings: what the trace rules report, and the order that puts the explaining break first."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from obsconf.conformance.traces.model import Span


class FindingCode(enum.StrEnum):
    """The kinds of finding, in the order used to break ties between findings of one span.

    A member is its string (`FindingCode.ORPHAN == "orphan"`), so JSON results, messages and
    `check_findings({"orphan"}, …)` read the same as plain strings."""

    NO_SPANS = "no-spans"
    MIXED_TRACE_IDS = "mixed-trace-ids"
    CONSUMER_ROOT = "consumer-root"
    ORPHAN = "orphan"
    MULTIPLE_ROOTS = "multiple-roots"
    WRONG_KIND = "wrong-kind"
    CONSUMER_PARENT_NOT_PRODUCER = "consumer-parent-not-producer"
    MISSING_SERVICE = "missing-service"
    SERVICE_ORDER = "service-order"
    CHILD_BEFORE_PARENT = "child-before-parent"
    ERROR_WITHOUT_STATUS = "error-without-status"


# Findings sort by tier first: 0 nothing to analyse, 1 a break in the graph, 2 a consequence
# of a break (a service absent or out of order), 3 independent of the graph's shape.
TIER: dict[FindingCode, int] = {
    FindingCode.NO_SPANS: 0,
    FindingCode.MIXED_TRACE_IDS: 0,
    FindingCode.CONSUMER_ROOT: 1,
    FindingCode.ORPHAN: 1,
    FindingCode.MULTIPLE_ROOTS: 1,
    FindingCode.WRONG_KIND: 1,
    FindingCode.CONSUMER_PARENT_NOT_PRODUCER: 1,
    FindingCode.MISSING_SERVICE: 2,
    FindingCode.SERVICE_ORDER: 2,
    FindingCode.CHILD_BEFORE_PARENT: 3,
    FindingCode.ERROR_WITHOUT_STATUS: 3,
}
_TIE_BREAK = {code: i for i, code in enumerate(FindingCode)}
_LAST = 1 << 126  # sort key of findings that name no span


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a trace, explained for someone who never saw the project."""

    code: FindingCode
    span_id: str  # the span concerned, or ""
    service: str
    message: str  # one sentence naming the spans and services concerned
    likely_cause: str  # one sentence


class FindingSet:
    """Collects findings once each and returns them in cause order: tier, then time."""

    def __init__(self) -> None:
        self._items: dict[Finding, tuple[int, int, int, int, str, str]] = {}

    def add(
        self,
        code: FindingCode,
        span: Span | None,
        message: str,
        cause: str,
        service: str = "",
        rank: int = 0,
    ) -> None:
        """Record a finding on `span` (or, with no span, on `service`); `rank` orders the
        findings of one tier and time (the service's place in the path)."""
        span_id, service = (span.span_id, span.service) if span else ("", service)
        finding = Finding(code, span_id, service, message, cause)
        start = span.start_ns if span else _LAST
        self._items.setdefault(
            finding, (TIER[code], start, rank, _TIE_BREAK[code], finding.span_id, message)
        )

    def sorted(self) -> list[Finding]:
        return sorted(self._items, key=self._items.__getitem__)


def no_spans() -> list[Finding]:
    """The one finding when there is nothing to analyse."""
    return [
        Finding(
            FindingCode.NO_SPANS,
            "",
            "",
            "No spans were found for this trace.",
            "the trace was not exported yet (poll longer), the services export to another "
            "backend, or the trace id is wrong",
        )
    ]


def gap_summary(findings: Iterable[Finding]) -> str:
    """One sentence naming the first broken hop: the finding that explains the others."""
    ordered = list(findings)
    if not ordered:
        return "No gap: the flow is connected along the expected path."
    position = {id(f): i for i, f in enumerate(ordered)}
    first = min(ordered, key=lambda f: (TIER.get(f.code, 9), position[id(f)]))
    more = len(ordered) - 1
    tail = f" ({more} more finding{'s' if more != 1 else ''})" if more else ""
    return f"First gap: {first.message.rstrip('.')}; likely cause: {first.likely_cause}{tail}."
