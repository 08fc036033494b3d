"""Accounting: charge each flow of a load to the stage where it was lost, and its freshness.

A flow that is not whole is charged to the first stage where something is missing; the
reconciliation table counts flows per stage. Freshness is how long after its request ended
each of a flow's signals became queryable, as the collection rounds observed it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from obsconf.conformance.load.collect import FlowAccount, Progress, collect
from obsconf.conformance.load.send import Sent
from obsconf.conformance.nats_tap import TappedMessage
from obsconf.conformance.system import System
from obsconf.conformance.traces.semconv import is_consume, is_publish, subject_of

# Where a flow can be lost, in path order: the table's rows.
STAGES = ("HTTP", "publish", "NATS", "consume", "exporter", "log path", "merged")
SIGNALS = ("metrics", "logs", "traces")


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
    """What a load came to: its flows, each charged with what it lost, and their freshness."""

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


def account(
    system: System,
    sent: Sent,
    messages: Callable[[], list[TappedMessage]] | None = None,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> Accounting:
    """Wait (under `timeout` s after the last answer) until every flow's trace is complete
    and quiet and each consumer's lines for it are in the store, then charge what is missing."""
    collected = collect(system, sent, timeout, progress)
    flows = collected.flows
    tapped = messages() if messages else None
    result = Accounting(
        sent,
        flows,
        tapped,
        _freshness(system, flows, collected.rounds.durations),
        collected.drained_s,
        collected.rounds.count,
    )
    for flow in flows:
        flow.lost = charge(flow, tapped, collected.consumers)
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
