"""LOAD at any N: send N concurrent user flows, then account for every one of them.

The accounting reads the backends in bulk, never one request per flow: traces by service and
time window in pages, log lines by service and window, the request counter once. Each flow
is followed along its path (HTTP → publish → NATS → consume → … , with the exporters and
the log path beside it); a flow that is not whole is charged to the first stage where
something is missing, and the reconciliation table counts flows per stage. While it waits
it reports progress and notes when each flow's signals became queryable (freshness).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from obsconf.conformance.clients.traces import search_window
from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.nats_tap import NatsTap, TappedMessage
from obsconf.conformance.scenarios import create_user, expectation_for, get_user
from obsconf.conformance.system import System
from obsconf.conformance.traces.expectation import Expectation
from obsconf.conformance.traces.flow import flow_spans, missing_structure, signature
from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.semconv import is_consume, is_publish, subject_of
from obsconf.stack.waiting import PollTimeout, poll

NOT_FOUND = 4  # GET /api/users/{id} of ids that do not exist, sent among the flows
CONCURRENCY = 32
# Where a flow can be lost, in path order: the table's rows.
STAGES = ("HTTP", "publish", "NATS", "consume", "exporter", "log path", "merged")
SIGNALS = ("metrics", "logs", "traces")
SLACK_S = 0.05
READERS = 4  # concurrent queries per accounting round


Progress = Callable[[str], None]


@dataclass
class Sent:
    """The requests of one load: the user-creating flows and the 404 probes among them."""

    flows: list[Call]
    probes: list[Call]
    started: float  # epoch s, first request sent
    ended: float  # epoch s, last answer received

    @property
    def calls(self) -> list[Call]:
        return [*self.flows, *self.probes]


def send(
    system: System, flows: int, concurrency: int = CONCURRENCY, probes: int = NOT_FOUND
) -> Sent:
    """`flows` POST /api/users and `probes` GETs of absent users, `concurrency` at a time."""
    local = threading.local()
    drivers: list[Driver] = []
    lock = threading.Lock()

    def driver() -> Driver:
        if not hasattr(local, "driver"):
            local.driver = system.driver(timeout=30.0)
            with lock:
                drivers.append(local.driver)
        return local.driver

    def run(i: int) -> Call:
        if i < flows:
            return create_user(driver())
        return get_user(driver(), 990_000_000 + i)

    started = time.time()
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, flows + probes))) as pool:
            calls = list(pool.map(run, range(flows + probes)))
    finally:
        for d in drivers:
            d.close()
    return Sent(calls[:flows], calls[flows:], started, max(c.ended for c in calls))


@dataclass
class FlowAccount:
    """What the backends hold about one flow, and when each signal became queryable."""

    call: Call
    expectation: Expectation
    traces: dict[str, list[Span]] = field(default_factory=dict)
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
class Freshness:
    """Seconds from the end of a request to its signal being queryable, per signal."""

    seconds: dict[str, list[float]]
    resolution_s: dict[str, float]  # how finely each was observed

    def percentile(self, signal: str, q: float) -> float | None:
        values = sorted(self.seconds.get(signal, []))
        if not values:
            return None
        return values[max(0, math.ceil(q / 100 * len(values)) - 1)]  # nearest rank

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        return {
            s: {
                "p50": self.percentile(s, 50),
                "p99": self.percentile(s, 99),
                "n": len(self.seconds.get(s, [])),
                "resolution_s": self.resolution_s.get(s),
            }
            for s in SIGNALS
        }

    def describe(self) -> str:
        parts = []
        for signal, row in self.summary().items():
            if row["n"]:
                parts.append(
                    f"{signal} p50 {row['p50']:.2f}s p99 {row['p99']:.2f}s "
                    f"(n={row['n']}, ±{row['resolution_s']:.2f}s)"
                )
            else:
                parts.append(f"{signal}: not observed")
        return "; ".join(parts)


@dataclass
class Accounting:
    sent: Sent
    flows: list[FlowAccount]
    messages: list[TappedMessage] | None  # None: no NATS tap (the target gives no NATS URL)
    freshness: Freshness
    drained_s: float  # last answer -> every flow complete (or the deadline)
    rounds: int

    def lost(self) -> dict[str, list[FlowAccount]]:
        """Flows per stage they were lost at (each flow under every stage it names)."""
        table: dict[str, list[FlowAccount]] = {stage: [] for stage in STAGES}
        for flow in self.flows:
            for stage in dict(flow.lost):
                table[stage].append(flow)
        return table

    def whole(self) -> int:
        return sum(not f.lost for f in self.flows)

    def reconciliation(self) -> list[dict[str, object]]:
        """One row per stage: flows lost there and the first example."""
        rows = []
        for stage, flows in self.lost().items():
            example = ""
            if flows:
                detail = next(d for s, d in flows[0].lost if s == stage)
                example = f"{flows[0].call.describe()}: {detail}"
            rows.append({"stage": stage, "flows": len(flows), "example": example})
        return rows

    def table(self) -> str:
        """The reconciliation as text (terminal, assertion messages)."""
        lines = [
            f"reconciliation of {len(self.flows)} flows: {self.whole()} whole, "
            f"{len(self.flows) - self.whole()} with something missing",
            f"  {'stage':<9} {'flows':>6}  first example",
        ]
        for row in self.reconciliation():
            lines.append(f"  {row['stage']:<9} {row['flows']:>6}  {row['example']}"[:300])
        return "\n".join(lines)


def _merge(pool: dict[str, dict[str, Span]], found: dict[str, list[Span]]) -> None:
    for trace_id, spans in found.items():
        known = pool.setdefault(trace_id, {})
        for span in spans:
            known[span.span_id] = span


def _windows(
    flows: list[FlowAccount], gap_s: float = 1.0, most: int = 100
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


def _linking(traces: dict[str, list[Span]]) -> dict[str, set[str]]:
    """Trace id -> the traces with a span linking into it (built once per round)."""
    index: dict[str, set[str]] = {}
    for trace_id, spans in traces.items():
        for span in spans:
            for link in span.links:
                if link.trace_id != trace_id:
                    index.setdefault(link.trace_id, set()).add(trace_id)
    return index


def _follow(
    main: str, traces: dict[str, list[Span]], linking: dict[str, set[str]]
) -> dict[str, list[Span]]:
    """`follow_links` over an index: `main` and every trace linking into it, transitively."""
    flow = {main: traces.get(main, [])}
    todo = [main]
    while todo:
        for trace_id in linking.get(todo.pop(), ()):
            if trace_id not in flow:
                flow[trace_id] = traces[trace_id]
                todo.append(trace_id)
    return {t: s for t, s in flow.items() if s}


def _flow_logs(lines_by_service: dict[str, list], flows: list[FlowAccount], now: float) -> int:
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


def account(
    system: System,
    sent: Sent,
    messages: Callable[[], list[TappedMessage]] | None = None,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> Accounting:
    """Wait (under `timeout` s after the last answer) until every flow's trace is complete
    and quiet and each consumer's lines for it are in the store, then charge what is missing."""
    flows = [FlowAccount(call, expectation_for(system, call)) for call in sent.flows]
    services = sorted({name for f in flows for name in f.expectation.services})
    # Whole traces come back from a search on any service they touch; consumers that link
    # root traces of their own, so each service is searched then.
    link = system.target.consumer_relation == "link"
    entries = sorted({f.expectation.services[0] for f in flows})
    searched = services if link else entries
    consumers = sorted({h.consumer_service for f in flows for h in f.expectation.hops})
    pool: dict[str, dict[str, Span]] = {}
    state = {"seen": frozenset(), "changed": time.monotonic(), "rounds": 0, "lines": 0}
    durations: list[float] = []
    settle = system.target.settle_s

    def one_round() -> bool:
        began = time.monotonic()
        now = time.time()
        pending = [f for f in flows if f.complete_at is None]
        since = min(f.call.started for f in pending or flows) - SLACK_S
        # Only the windows of the flows still incomplete; a full re-read once all are complete
        # (a late duplicate) or when consumers link (their traces start when consumed).
        windows = _windows(pending) if pending and not link else [(since, now + 1)]
        with ThreadPoolExecutor(max_workers=READERS) as readers:  # the stores work meanwhile
            found = [
                readers.submit(search_window, system.traces, service, start, end)
                for service in searched
                for start, end in windows
            ]
            read = {
                s: readers.submit(system.logs.lines, s, since=sent.started - SLACK_S)
                for s in services
            }
            for future in found:
                _merge(pool, future.result())
            lines = {s: future.result() for s, future in read.items()}
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
        state["lines"] = _flow_logs(lines, flows, now)
        seen = signature(traces)
        if seen != state["seen"]:
            state["seen"], state["changed"] = seen, time.monotonic()
        state["rounds"] += 1
        durations.append(time.monotonic() - began)
        complete = sum(f.complete_at is not None for f in flows)
        logged = sum(all(c in f.logged for c in consumers) for f in flows)
        if progress:
            progress(
                f"LOAD: {len(flows)} flows sent / {complete} traces complete / "
                f"{logged} flows with every consumer's lines ({state['lines']} lines seen) "
                f"after {time.time() - sent.ended:.1f}s"
            )
        quiet = time.monotonic() - state["changed"] >= settle
        return complete == len(flows) and logged == len(flows) and quiet

    with contextlib.suppress(PollTimeout):  # what is missing then is what the table shows
        poll(
            one_round,
            until=bool,
            timeout=timeout + settle,
            describe=f"{len(flows)} flows to complete",
        )
    done = max((f.complete_at or time.time() for f in flows), default=sent.ended)
    tapped = messages() if messages else None
    result = Accounting(
        sent,
        flows,
        tapped,
        _freshness(system, flows, durations),
        max(0.0, done - sent.ended),
        state["rounds"],
    )
    for flow in flows:
        flow.lost = charge(flow, tapped, consumers)
    _charge_merged(flows)
    return result


def _freshness(system: System, flows: list[FlowAccount], durations: list[float]) -> Freshness:
    resolution = max(durations, default=0.0)
    entry = {f.expectation.services[0] for f in flows if f.expectation.services}
    seconds: dict[str, list[float]] = {s: [] for s in SIGNALS}
    for flow in flows:
        end = flow.call.ended
        if flow.complete_at is not None:
            seconds["traces"].append(max(0.0, flow.complete_at - end))
        first = [t for s, t in flow.logged.items() if s in entry]
        if first:
            seconds["logs"].append(max(0.0, min(first) - end))
    scrapes = {job: system.prometheus.scrape_times(job) for job in entry}
    for flow in flows:
        after = [t for t in scrapes.get(flow.expectation.services[0], []) if t >= flow.call.ended]
        if after:
            seconds["metrics"].append(min(after) - flow.call.ended)
    return Freshness(seconds, {"metrics": 0.001, "logs": resolution, "traces": resolution})


def _on_nats(messages: Iterable[TappedMessage], subject: str, flow: FlowAccount) -> bool:
    ids = flow.trace_ids()
    for message in messages:
        if message.subject != subject:
            continue
        headers = {k.lower(): v for k, v in message.headers.items()}
        parts = headers.get("traceparent", "").split("-")
        if headers.get("x-request-id") == flow.call.request_id or (
            len(parts) > 1 and parts[1] in ids
        ):
            return True
    return False


def charge(
    flow: FlowAccount, messages: list[TappedMessage] | None, consumers: list[str]
) -> list[tuple[str, str]]:
    """The stages where this flow lost something, with what is missing; [] when whole."""
    call = flow.call
    if call.status != 201:
        return [("HTTP", f"answered {call.status}")]
    spans = flow.spans
    entry = flow.expectation.services[0]
    if not any(s.kind == "SERVER" and s.service == entry for s in spans):
        return [("exporter", f"no {entry} SERVER span in trace {call.trace_id}")]
    lost: list[tuple[str, str]] = []
    for hop in flow.expectation.hops:
        published = [s for s in spans if is_publish(s) and subject_of(s) == hop.subject]
        consumed = [s for s in spans if is_consume(s) and subject_of(s) == hop.subject]
        on_nats = None if messages is None else _on_nats(messages, hop.subject, flow)
        processed = hop.consumer_service in flow.logged
        if not published:
            if on_nats or consumed:
                lost.append(
                    ("exporter", f"{hop.producer_service}: no publish span on {hop.subject}")
                )
            else:
                return [*lost, ("publish", f"{hop.producer_service} never published {hop.subject}")]
        if not consumed:
            if on_nats is False:
                return [*lost, ("NATS", f"{hop.subject} published but never seen on NATS")]
            if processed:
                lost.append(
                    (
                        "exporter",
                        f"{hop.consumer_service} logged the flow but its consume span "
                        f"on {hop.subject} is missing",
                    )
                )
                continue
            return [*lost, ("consume", f"{hop.consumer_service} never processed {hop.subject}")]
        if len(consumed) > 1:
            lost.append(("consume", f"{len(consumed)} consume spans on {hop.subject}, expected 1"))
    for service in flow.expectation.services:
        if not any(s.service == service for s in spans) and not any(service in d for _, d in lost):
            lost.append(("exporter", f"no span of {service}"))
    for service in consumers:
        if service not in flow.logged:
            lost.append(("log path", f"no line of {service} for the flow in the log store"))
    return lost


def _charge_merged(flows: list[FlowAccount]) -> None:
    owners: Counter[str] = Counter(tid for f in flows for tid in f.traces)
    for flow in flows:
        shared = sorted(t for t in flow.traces if owners[t] > 1)
        if shared:
            flow.lost.append(("merged", f"trace {shared[0]} holds {owners[shared[0]]} flows"))


def tap(system: System, subjects: Iterable[str]) -> contextlib.AbstractContextManager:
    """A NATS tap on the flow subjects when the target gives a NATS URL, else a no-op."""
    if not system.nats_url:
        return contextlib.nullcontext(None)
    return NatsTap(system.nats_url, list(subjects))
