"""LOAD: N concurrent flows (`--flows N`) stay N separate, unbroken traces, with exact counts,
no loss, and fresh telemetry. Every flow is accounted for (conformance.load): what is missing
is charged to the stage where it was lost, in a reconciliation table."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from obsconf.conformance.checks import check_equal
from obsconf.conformance.evidence import (
    CompareEvidence,
    FreshnessEvidence,
    LogEvidence,
    ReconciliationEvidence,
    ReconciliationRow,
    Recorder,
    SignalFreshness,
)
from obsconf.conformance.load.account import Accounting, account
from obsconf.conformance.load.send import send, tap
from obsconf.conformance.metrics import (
    Key,
    await_scrape_after,
    delta,
    expected_requests,
    format_counts,
    selector,
    snapshot,
)
from obsconf.conformance.scenarios import FLOW_TIMEOUT
from obsconf.conformance.system import System
from obsconf.conformance.test_logs import check_no_log_loss

PROGRESS_EVERY_S = 2.0
DRAIN_S_PER_FLOW = 0.12  # the wait for the backends grows with N (1,000 flows: 130 s)


@dataclass
class Load:
    accounting: Accounting
    expected: Counter[Key]
    counted: Counter[Key]


def _progress(config: pytest.Config) -> Callable[[str], None]:
    """A progress line on the terminal (outside output capture) at most every 2 s."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    last = [0.0]

    def report(line: str) -> None:
        if reporter is None or time.monotonic() - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = time.monotonic()
        if capture is None:
            reporter.write_line(line)
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(line)

    return report


@pytest.fixture(scope="module")
def load(obsconf_system: System, pytestconfig: pytest.Config) -> Load:
    target = obsconf_system.target
    flows = int(pytestconfig.getoption("--flows"))
    labels = [target.labels[k] for k in ("method", "route", "status")]
    series = selector(target, target.metrics["requests"], obsconf_system.names["user"])
    await_scrape_after(obsconf_system.prometheus, obsconf_system.names["user"], time.time())
    before = snapshot(obsconf_system.prometheus, series, labels)
    subjects = [target.subjects[k] for k in ("user_created", "order_created")]
    with tap(obsconf_system, subjects) as tapped:
        sent = send(obsconf_system, flows)
        await_scrape_after(obsconf_system.prometheus, obsconf_system.names["user"], sent.ended)
        counted = delta(before, snapshot(obsconf_system.prometheus, series, labels))
        accounting = account(
            obsconf_system,
            sent,
            tapped.snapshot if tapped else None,
            timeout=FLOW_TIMEOUT + DRAIN_S_PER_FLOW * flows,
            progress=_progress(pytestconfig),
        )
    return Load(accounting, expected_requests(sent.calls), counted)


def _reconciliation(load: Load, evidence: Recorder) -> None:
    a = load.accounting
    evidence(
        ReconciliationEvidence(
            check=f"{len(a.flows)} concurrent flows accounted for, stage by stage",
            rows=tuple(ReconciliationRow.from_dict(row) for row in a.reconciliation()),
            table=a.table(),
            expected=f"{len(a.flows)} whole flows",
            seen=f"{a.whole()} whole",
        )
    )


@pytest.mark.guarantee("LOAD-DISTINCT-TRACES")
def test_load_distinct_traces(load: Load, obsconf_evidence: Recorder) -> None:
    a = load.accounting
    _reconciliation(load, obsconf_evidence)
    calls = a.sent.flows
    assert all(c.status == 201 for c in calls), a.table()
    assert len({c.trace_id for c in calls}) == len(calls), (
        "two concurrent requests landed in one trace: " + ", ".join(c.describe() for c in calls)
    )
    broken = [f for f in a.flows if f.missing]
    assert not broken, (
        f"{len(broken)} of {len(a.flows)} concurrent flows broke, e.g. "
        f"{broken[0].call.describe()}: missing {', '.join(broken[0].missing)}\n{a.table()}"
    )


@pytest.mark.guarantee("LOAD-EXACT-COUNTS")
def test_load_exact_counts(obsconf_system: System, load: Load, obsconf_evidence: Recorder) -> None:
    check_equal(
        f"{obsconf_system.names['user']}: requests counted under concurrency",
        "http_requests_total delta",
        format_counts(load.expected),
        format_counts(load.counted),
        obsconf_evidence,
    )


@pytest.mark.guarantee("LOAD-NO-LOG-LOSS")
def test_load_no_log_loss(obsconf_system: System, load: Load, obsconf_evidence: Recorder) -> None:
    a = load.accounting
    unlogged = a.lost()["log path"]
    obsconf_evidence(
        LogEvidence(
            check="every consumer's lines for every flow in the log store",
            expected=f"{len(a.flows)} flows",
            seen=f"{len(a.flows) - len(unlogged)} flows",
        )
    )
    assert not unlogged, f"{len(unlogged)} flows lack log lines in the store\n{a.table()}"
    check_no_log_loss(obsconf_system, obsconf_evidence, after=a.sent.ended)


@pytest.mark.guarantee("LOAD-NO-MERGED-TRACES")
def test_load_no_merged_traces(load: Load, obsconf_evidence: Recorder) -> None:
    a = load.accounting
    problems = [
        f"{f.call.describe()}: {detail}"
        for f in a.flows
        for stage, detail in f.lost
        if stage == "merged" or (stage == "consume" and "consume spans" in detail)
    ]
    obsconf_evidence(
        CompareEvidence(
            check="one consume span per hop in each concurrent flow, no trace in two flows",
            expected=1,
            seen=problems[:20] or "all 1",
        )
    )
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:20])


@pytest.mark.guarantee("LOAD-FRESHNESS")
def test_load_freshness(obsconf_system: System, load: Load, obsconf_evidence: Recorder) -> None:
    """p99 of request end -> signal queryable, per signal, within the target's thresholds."""
    fresh = load.accounting.freshness
    limits = obsconf_system.target.freshness_s
    summary = fresh.summary()
    obsconf_evidence(
        FreshnessEvidence(
            check="seconds from the end of a request to its signal being queryable (p50 / p99)",
            freshness={s: SignalFreshness.from_dict(row) for s, row in summary.items()},
            expected={s: f"p99 <= {limit:g}s" for s, limit in limits.items()},
            seen=fresh.describe(),
        )
    )
    late = [
        f"{signal}: p99 {summary[signal]['p99']:.2f}s > {limit:g}s"
        for signal, limit in limits.items()
        if (p99 := summary[signal]["p99"]) is not None and p99 > limit
    ]
    unseen = [s for s in limits if summary[s]["n"] == 0]
    assert not unseen, f"never observed: {', '.join(unseen)} ({fresh.describe()})"
    assert not late, "telemetry late: " + "; ".join(late) + f"\n({fresh.describe()})"
