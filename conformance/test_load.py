"""LOAD: N concurrent flows stay N separate, unbroken traces, with exact counts and no loss."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from obsconf.conformance.checks import check_equal
from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.metrics import (
    await_scrape_after,
    delta,
    expected_requests,
    format_counts,
    selector,
    snapshot,
)
from obsconf.conformance.scenarios import Settled, create_user, get_user, settle_calls
from obsconf.conformance.system import System
from obsconf.conformance.test_logs import check_no_log_loss
from obsconf.conformance.traces.analysis import (
    Expectation,
    analyse_flow,
    expectation_from_target,
    is_consume,
    subject_of,
)

FLOWS = 6
NOT_FOUND = 4


@dataclass
class Load:
    flows: list[Call]
    settled: list[Settled]  # per flow: its trace and the traces linked to it
    expected: Counter
    counted: Counter
    expectation: Expectation
    ended: float


@pytest.fixture(scope="module")
def load(system: System) -> Load:
    target = system.target
    labels = [target.labels[k] for k in ("method", "route", "status")]
    series = selector(target, target.metrics["requests"], system.names["user"])
    await_scrape_after(system.prometheus, system.names["user"], time.time())
    before = snapshot(system.prometheus, series, labels)
    drivers = [Driver(system.urls) for _ in range(FLOWS + NOT_FOUND)]

    def run(i: int) -> Call:
        if i < FLOWS:
            return create_user(drivers[i])
        return get_user(drivers[i], 990_000_000 + i)

    with ThreadPoolExecutor(max_workers=FLOWS + NOT_FOUND) as pool:
        calls = list(pool.map(run, range(FLOWS + NOT_FOUND)))
    for d in drivers:
        d.close()
    ended = max(c.ended for c in calls)
    await_scrape_after(system.prometheus, system.names["user"], ended)
    counted = delta(before, snapshot(system.prometheus, series, labels))
    expected = expected_requests(calls)
    flows = calls[:FLOWS]
    assert all(c.status == 201 for c in flows), [c.describe() for c in flows]
    expectation = expectation_from_target(target)
    return Load(flows, settle_calls(system, flows), expected, counted, expectation, ended)


@pytest.mark.guarantee("LOAD-DISTINCT-TRACES")
def test_load_distinct_traces(load: Load, evidence) -> None:
    problems = []
    for call, settled in zip(load.flows, load.settled, strict=True):
        missing = [
            f.message
            for f in analyse_flow(settled.traces, settled.expectation)
            if f.code == "missing-service"
        ]
        if missing:
            problems.append(f"{call.describe()}: {missing[0]} ({settled.describe_wait()})")
    evidence(
        kind="compare",
        check="concurrent flows reaching every service",
        expected=f"{len(load.flows)} complete flows",
        seen=f"{len(load.flows) - len(problems)} complete",
    )
    assert len({c.trace_id for c in load.flows}) == len(load.flows), (
        "two concurrent requests landed in one trace: "
        + ", ".join(c.describe() for c in load.flows)
    )
    assert not problems, f"{len(problems)} of {len(load.flows)} concurrent flows broke:\n" + (
        "\n".join(problems)
    )


@pytest.mark.guarantee("LOAD-EXACT-COUNTS")
def test_load_exact_counts(system: System, load: Load, evidence) -> None:
    check_equal(
        f"{system.names['user']}: requests counted under concurrency",
        "http_requests_total delta",
        format_counts(load.expected),
        format_counts(load.counted),
        evidence,
    )


@pytest.mark.guarantee("LOAD-NO-LOG-LOSS")
def test_load_no_log_loss(system: System, load: Load, evidence) -> None:
    check_no_log_loss(system, evidence, after=load.ended)


@pytest.mark.guarantee("LOAD-NO-MERGED-TRACES")
def test_load_no_merged_traces(load: Load, evidence) -> None:
    problems = []
    owners: dict[str, list[str]] = {}
    for call, settled in zip(load.flows, load.settled, strict=True):
        for trace_id in settled.traces:
            owners.setdefault(trace_id, []).append(call.describe())
        for hop in load.expectation.hops:
            consumes = [s for s in settled.spans if is_consume(s) and subject_of(s) == hop.subject]
            if len(consumes) != 1:
                problems.append(
                    f"the flow of {call.describe()} holds {len(consumes)} '{hop.subject}' "
                    f"consume spans, expected 1"
                )
    problems += [
        f"trace {tid} belongs to {len(calls)} flows: {'; '.join(calls)}"
        for tid, calls in owners.items()
        if len(calls) > 1
    ]
    evidence(
        kind="compare",
        check="one consume span per hop in each concurrent flow, no trace in two flows",
        expected=1,
        seen=problems or "all 1",
    )
    assert not problems, "\n".join(problems)
