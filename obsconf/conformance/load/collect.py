"""Bulk collection: read the backends in rounds until every flow of a load is whole and quiet.

A round reads traces by service and time window (paged) and every service's log lines since
the load began, READERS queries at a time, never one request per flow; it then follows each
flow's trace and the traces linking into it, and notes when each flow's trace was first
complete and each service's lines for it first seen.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from obsconf.conformance.clients.logs import LogLine
from obsconf.conformance.clients.traces import search_window
from obsconf.conformance.driver import Call
from obsconf.conformance.load.send import Sent
from obsconf.conformance.scenarios import expectation_for
from obsconf.conformance.system import System
from obsconf.conformance.traces.expectation import Expectation
from obsconf.conformance.traces.flow import flow_spans, missing_structure, signature
from obsconf.conformance.traces.model import Span
from obsconf.stack.waiting import PollTimeout, poll

SLACK_S = 0.05
READERS = 4  # concurrent queries per collection round

Progress = Callable[[str], None]
Traces = dict[str, list[Span]]  # trace id -> its spans


@dataclass
class FlowAccount:
    """What the backends hold about one flow, and when each signal became queryable."""

    call: Call
    expectation: Expectation
    traces: Traces = field(default_factory=dict)
    missing: list[str] = field(default_factory=lambda: ["any span"])
    complete_at: float | None = None  # epoch s the trace was first seen complete
    logged: dict[str, float] = field(default_factory=dict)  # service -> first seen (epoch s)
    lost: list[tuple[str, str]] = field(default_factory=list)  # (stage, what is missing)

    @property
    def spans(self) -> list[Span]:
        return flow_spans(self.traces)

    def trace_ids(self) -> set[str]:
        return set(self.traces) | ({self.call.trace_id} if self.call.trace_id else set())


@dataclass
class Rounds:
    """What the collection rounds have seen so far; each round records itself here."""

    changed: float  # monotonic s the traces read last changed
    seen: frozenset[tuple[str, str, int]] = frozenset()  # their signature since then
    count: int = 0
    lines: int = 0  # log lines the last round read
    durations: list[float] = field(default_factory=list)  # s each round took

    def record(self, seen: frozenset[tuple[str, str, int]], lines: int, began: float) -> None:
        """One round, begun at monotonic `began`, read traces of signature `seen` and `lines`
        log lines."""
        self.lines = lines
        if seen != self.seen:
            self.seen, self.changed = seen, time.monotonic()
        self.count += 1
        self.durations.append(time.monotonic() - began)

    def quiet(self, settle: float) -> bool:
        """Whether the traces have not changed for `settle` s."""
        return time.monotonic() - self.changed >= settle


@dataclass
class Collected:
    """The flows of a load as the backends hold them once collection ended."""

    flows: list[FlowAccount]
    consumers: list[str]  # the services that consume a hop of some flow
    rounds: Rounds
    drained_s: float  # last answer -> every flow complete (or the deadline)


def _merge(pool: dict[str, dict[str, Span]], found: Mapping[str, list[Span]]) -> None:
    for trace_id, spans in found.items():
        known = pool.setdefault(trace_id, {})
        for span in spans:
            known[span.span_id] = span


def _windows(
    flows: Sequence[FlowAccount], gap_s: float = 1.0, most: int = 100
) -> list[tuple[float, float]]:
    """Time windows covering these flows' requests (entry spans start inside them), merged
    where less than `gap_s` apart and holding at most `most` flows (read in parallel): a
    round re-reads only where flows are still incomplete."""
    windows: list[list[float]] = []
    count = 0
    for started, ended in sorted((f.call.started, f.call.ended) for f in flows):
        if windows and started - windows[-1][1] <= gap_s and count < most:
            windows[-1][1] = max(windows[-1][1], ended)
            count += 1
        else:
            windows.append([started, ended])
            count = 1
    return [(start - SLACK_S, end + SLACK_S) for start, end in windows]


def _linking(traces: Traces) -> dict[str, set[str]]:
    """Trace id -> the traces with a span linking into it (built once per round)."""
    index: dict[str, set[str]] = {}
    for trace_id, spans in traces.items():
        for span in spans:
            for link in span.links:
                if link.trace_id != trace_id:
                    index.setdefault(link.trace_id, set()).add(trace_id)
    return index


def _follow(main: str, traces: Traces, linking: Mapping[str, set[str]]) -> Traces:
    """`follow_links` over an index: `main` and every trace linking into it, transitively."""
    flow = {main: traces.get(main, [])}
    todo = [main]
    while todo:
        for trace_id in linking.get(todo.pop(), ()):
            if trace_id not in flow:
                flow[trace_id] = traces[trace_id]
                todo.append(trace_id)
    return {t: s for t, s in flow.items() if s}


def _flow_logs(
    lines_by_service: Mapping[str, list[LogLine]], flows: Sequence[FlowAccount], now: float
) -> int:
    """Note the first time each flow's lines were seen, per service; lines seen in total."""
    by_request = {f.call.request_id: f for f in flows if f.call.request_id}
    by_trace = {tid: f for f in flows for tid in f.trace_ids()}
    total = 0
    for service, lines in lines_by_service.items():
        total += len(lines)
        for line in lines:
            flow = by_request.get(line.get("request_id")) or by_trace.get(line.get("trace_id"))
            if flow is not None:
                flow.logged.setdefault(service, now)
    return total


def _read(
    system: System,
    searched: Sequence[str],
    windows: Sequence[tuple[float, float]],
    services: Sequence[str],
    lines_since: float,
    pool: dict[str, dict[str, Span]],
) -> dict[str, list[LogLine]]:
    """One round's queries, READERS at a time (the stores work meanwhile): the traces of each
    `searched` service in each window, merged into `pool`; each service's lines since
    `lines_since`, returned by service."""
    with ThreadPoolExecutor(max_workers=READERS) as readers:
        found = [
            readers.submit(search_window, system.traces, service, start, end)
            for service in searched
            for start, end in windows
        ]
        read = {s: readers.submit(system.logs.lines, s, since=lines_since) for s in services}
        for future in found:
            _merge(pool, future.result())
        return {s: future.result() for s, future in read.items()}


def _follow_flows(
    flows: Sequence[FlowAccount], pool: dict[str, dict[str, Span]], now: float
) -> Traces:
    """Every trace read so far; each flow's traces and what they still lack, and, the first
    time they lack nothing, `now` as when the flow became complete."""
    traces = {tid: list(spans.values()) for tid, spans in pool.items()}
    linking = _linking(traces)
    for flow in flows:
        if not flow.call.trace_id:
            continue
        flow.traces = _follow(flow.call.trace_id, traces, linking)
        flow.missing = (
            missing_structure(flow.spans, flow.expectation) if flow.traces else ["any span"]
        )
        if not flow.missing and flow.complete_at is None:
            flow.complete_at = now
    return traces


def collect(
    system: System, sent: Sent, timeout: float = 60.0, progress: Progress | None = None
) -> Collected:
    """Read the backends in rounds until (under `timeout` s after the last answer) every flow's
    trace is complete and quiet and each consumer's lines for it are in the store."""
    flows = [FlowAccount(call, expectation_for(system, call)) for call in sent.flows]
    services = sorted({name for f in flows for name in f.expectation.services})
    # Whole traces come back from a search on any service they touch; consumers that link
    # root traces of their own, so each service is searched then.
    link = system.target.consumer_relation == "link"
    entries = sorted({f.expectation.services[0] for f in flows})
    searched = services if link else entries
    consumers = sorted({h.consumer_service for f in flows for h in f.expectation.hops})
    pool: dict[str, dict[str, Span]] = {}
    rounds = Rounds(changed=time.monotonic())
    settle = system.target.settle_s

    def one_round() -> bool:
        began = time.monotonic()
        now = time.time()
        pending = [f for f in flows if f.complete_at is None]
        since = min(f.call.started for f in pending or flows) - SLACK_S
        # Only the windows of the flows still incomplete; a full re-read once all are complete
        # (a late duplicate) or when consumers link (their traces start when consumed).
        windows = _windows(pending) if pending and not link else [(since, now + 1)]
        lines = _read(system, searched, windows, services, sent.started - SLACK_S, pool)
        traces = _follow_flows(flows, pool, now)
        rounds.record(signature(traces), _flow_logs(lines, flows, now), began)
        complete = sum(f.complete_at is not None for f in flows)
        logged = sum(all(c in f.logged for c in consumers) for f in flows)
        if progress:
            progress(
                f"LOAD: {len(flows)} flows sent / {complete} traces complete / "
                f"{logged} flows with every consumer's lines ({rounds.lines} lines seen) "
                f"after {time.time() - sent.ended:.1f}s"
            )
        return complete == len(flows) and logged == len(flows) and rounds.quiet(settle)

    with contextlib.suppress(PollTimeout):  # what is missing then is what the table shows
        poll(
            one_round,
            until=bool,
            timeout=timeout + settle,
            describe=f"{len(flows)} flows to complete",
        )
    done = max((f.complete_at or time.time() for f in flows), default=sent.ended)
    return Collected(flows, consumers, rounds, max(0.0, done - sent.ended))
