"""The whole-run sweep: everything each service produced while the suite ran.

A guarantee that says "every line" or "every span" is checked on one flow by its family's
tests, and then once more, at the end of the run, over *all* the lines each service wrote and
all the spans of the traces its services began since the system opened — error paths, load,
propagation cases and stateful sequences included. `RunOutput` gathers that once (settled:
nothing new for the target's settle interval) and says what the suite itself sent, so the
checks can tell the suite's own made-up parents and unsampled requests from real gaps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from obsconf.conformance.clients.logs import LogLine
from obsconf.conformance.clients.traces import TraceNotFound, search_window
from obsconf.conformance.driver import Call
from obsconf.conformance.logs import SLACK_S, line_time
from obsconf.conformance.system import System
from obsconf.conformance.traces.model import Span
from obsconf.stack.waiting import PollTimeout, poll

# Loose on purpose: a span id the suite sent in any traceparent, valid or not, may rightly be
# (or, for a lenient implementation, wrongly be) a server span's parent; neither is an orphan.
SENT_IDS = re.compile(r"([0-9a-fA-F]{32})-([0-9a-fA-F]{16})(?:-([0-9a-fA-F]{2}))?")
SETTLE_TIMEOUT = 30.0
SEARCH_LIMIT = 1000  # traces asked of one search (`search_window` splits a full page)
MIN_WINDOW_S = 0.01  # a window this short that still fills a page is read as it is


@dataclass(frozen=True)
class SentContext:
    """What the suite's own traceparent headers named during the run."""

    parents: frozenset[tuple[str, str]]  # (trace id, span id) the suite sent as a parent
    unsampled: frozenset[str]  # trace ids sent with the sampled flag off


def sent_context(calls: Iterable[Call]) -> SentContext:
    parents, unsampled = set(), set()
    for call in calls:
        for name, value in call.sent_fields:
            match = SENT_IDS.search(value) if name.lower() == "traceparent" else None
            if match:
                trace_id, span_id, flags = match.group(1).lower(), match.group(2).lower(), match[3]
                parents.add((trace_id, span_id))
                if flags and not int(flags, 16) & 1:
                    unsampled.add(trace_id)
    return SentContext(frozenset(parents), frozenset(unsampled))


@dataclass
class RunOutput:
    """All lines and traces of the run, per service, as the backends hold them."""

    since: float
    until: float
    lines: dict[str, list[LogLine]] = field(default_factory=dict)  # service -> lines
    traces: dict[str, list[Span]] = field(default_factory=dict)  # trace id -> spans
    sent: SentContext = field(default_factory=lambda: SentContext(frozenset(), frozenset()))
    settled: bool = True

    @property
    def spans(self) -> list[Span]:
        return [s for spans in self.traces.values() for s in spans]

    def line_count(self) -> int:
        return sum(len(lines) for lines in self.lines.values())


def run_lines(system: System, service: str, since: float, until: float) -> list[LogLine]:
    """Every line `service` wrote in [since, until], read in windows small enough that each
    read returns all the store counts in it."""
    fetched = system.logs.lines(service, since=since, until=until)
    complete = len(fetched) >= system.logs.count(service, since=since, until=until)
    if complete or until - since < MIN_WINDOW_S:
        return [ln for ln in fetched if line_time(ln) >= since - SLACK_S]
    middle = (since + until) / 2
    return run_lines(system, service, since, middle) + run_lines(system, service, middle, until)


def _all_traces(system: System, since: float) -> dict[str, list[Span]]:
    found: dict[str, list[Span]] = {}
    for service in system.names.values():
        found.update(search_window(system.traces, service, since, time.time() + 1, SEARCH_LIMIT))
    return found


def gather_run(system: System) -> RunOutput:
    """The run's output once the trace store has settled (no new span for the settle
    interval, or the deadline: then `settled` is False and the checks say so)."""
    since = system.opened_at
    seen: list[int] = []
    output = RunOutput(since=since, until=time.time())

    def quiet() -> bool:
        output.traces = _all_traces(system, since)
        seen.append(len(output.spans))
        return len(seen) >= 2 and seen[-1] == seen[-2]

    try:
        poll(
            quiet,
            timeout=SETTLE_TIMEOUT,
            interval=system.target.settle_s,
            max_interval=system.target.settle_s,
            describe=f"the run's traces to settle ({system.target.settle_s:.1f}s without a new "
            "span)",
        )
    except PollTimeout:
        output.settled = False
    output.until = time.time()
    output.lines = {
        name: run_lines(system, name, since, output.until) for name in system.names.values()
    }
    output.sent = sent_context(system.journal)
    return output


def confirmed_orphans(system: System, output: RunOutput) -> list[Span]:
    """Spans whose parent is not in their trace, re-read one trace at a time (a search may
    return part of a trace); a parent the suite sent in a traceparent is no orphan."""
    suspects = {
        trace_id for trace_id, spans in output.traces.items() if _orphans(spans, output.sent)
    }
    orphans = []
    for trace_id in sorted(suspects):
        try:
            spans = system.traces.trace(trace_id)
        except TraceNotFound:
            spans = output.traces[trace_id]
        orphans.extend(_orphans(spans, output.sent))
    return orphans


def _orphans(spans: list[Span], sent: SentContext) -> list[Span]:
    ids = {s.span_id for s in spans}
    return [
        s
        for s in spans
        if s.parent_span_id
        and s.parent_span_id not in ids
        and (s.trace_id, s.parent_span_id) not in sent.parents
    ]


def unresolved_trace_ids(system: System, output: RunOutput) -> dict[str, list[str]]:
    """service -> trace ids its lines carry that the trace store does not hold (the suite's
    unsampled requests excepted: their spans are rightly never exported)."""
    missing: dict[str, list[str]] = {}
    known = set(output.traces)
    for service, lines in output.lines.items():
        ids = {str(ln.get("trace_id")) for ln in lines if ln.get("trace_id")}
        for trace_id in sorted(ids - known - output.sent.unsampled):
            try:
                system.traces.trace(trace_id)
            except TraceNotFound:
                missing.setdefault(service, []).append(trace_id)
            else:
                known.add(trace_id)
    return missing


def request_lines_of(output: RunOutput, system: System, call: Call) -> list[LogLine]:
    """The called service's lines carrying the call's X-Request-ID, written while it was in
    flight (by the line's own `ts`)."""
    request_id = next((v for k, v in call.sent_fields if k.lower() == "x-request-id"), None)
    if not request_id:
        return []
    return [
        ln
        for ln in output.lines.get(system.names[call.role], [])
        if ln.get("request_id") == request_id
        and call.started - SLACK_S <= line_time(ln) <= call.ended + SLACK_S
    ]


def lines_during_requests(system: System, output: RunOutput) -> list[tuple[Call, LogLine]]:
    """(call, line) for every request the run sent and every line written for it."""
    return [(c, ln) for c in system.journal for ln in request_lines_of(output, system, c)]
