"""The whole-run sweep: the "every line" and "every span" guarantees, over everything.

The family tests check these guarantees on the flows they drive; here they are checked once
more, after every other test, over all the lines each service wrote and all the spans of the
traces its services began while the system was open (the `whole-run` scenario). Each test
records how much it examined, so "every" is visibly every.
"""

from __future__ import annotations

import re

import pytest

from obsconf.conformance.clients.logs import LogLine
from obsconf.conformance.driver import Call
from obsconf.conformance.evidence import Recorder, SweepEvidence
from obsconf.conformance.logs import REQUIRED_KEYS, describe_lines
from obsconf.conformance.sweep import (
    RunOutput,
    confirmed_orphans,
    gather_run,
    lines_during_requests,
    unresolved_trace_ids,
)
from obsconf.conformance.system import System

pytestmark = pytest.mark.whole_run

TRACE_ID = re.compile(r"^(?!0{32})[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^(?!0{16})[0-9a-f]{16}$")
UNNAMED = ("", "unknown_service")


@pytest.fixture(scope="module")
def run_output(obsconf_system: System, obsconf_error_paths: list[Call]) -> RunOutput:
    return gather_run(obsconf_system)


def _examined(output: RunOutput, **counts: int) -> dict[str, int]:
    return {**counts, "window_s": round(output.until - output.since)}


def _unsettled(output: RunOutput) -> str:
    return "" if output.settled else " (the trace store had not settled at the deadline)"


def _sweep_lines(output: RunOutput, evidence: Recorder, check: str, bad: list[LogLine]) -> None:
    evidence(
        SweepEvidence(
            check=check,
            examined=_examined(output, lines=output.line_count(), services=len(output.lines)),
            expected="none",
            seen=[ln.raw[:300] for ln in bad[:20]],
        )
    )
    assert not bad, (
        f"{len(bad)} of the run's {output.line_count()} log lines: {check}:\n{describe_lines(bad)}"
    )


@pytest.mark.guarantee("LOG-JSON-LINES")
def test_sweep_json_lines(run_output: RunOutput, obsconf_evidence: Recorder) -> None:
    bad = [ln for lines in run_output.lines.values() for ln in lines if ln.fields is None]
    _sweep_lines(run_output, obsconf_evidence, "not one JSON object", bad)


@pytest.mark.guarantee("LOG-REQUIRED-KEYS")
def test_sweep_required_keys(run_output: RunOutput, obsconf_evidence: Recorder) -> None:
    bad = [
        ln
        for lines in run_output.lines.values()
        for ln in lines
        if ln.fields is not None and any(key not in ln.fields for key in REQUIRED_KEYS)
    ]
    _sweep_lines(run_output, obsconf_evidence, f"a JSON line without one of {REQUIRED_KEYS}", bad)


@pytest.mark.guarantee("LOG-SERVICE-FIELD")
def test_sweep_service_field(run_output: RunOutput, obsconf_evidence: Recorder) -> None:
    bad = [
        ln
        for name, lines in run_output.lines.items()
        for ln in lines
        if ln.fields is not None and ln.get("service") != name
    ]
    _sweep_lines(
        run_output, obsconf_evidence, "a JSON line whose service field is not its writer", bad
    )


def _request_line_problem(line: LogLine, key: str, span_ids: dict[str, set[str]]) -> str:
    """What is wrong with a request line's `key` (trace_id or span_id), or ""."""
    trace_id, span_id = str(line.get("trace_id") or ""), str(line.get("span_id") or "")
    if key == "trace_id":
        return "" if TRACE_ID.match(trace_id) else f"trace_id {trace_id!r} is not 32 hex digits"
    if not SPAN_ID.match(span_id):
        return f"span_id {span_id!r} is not 16 hex digits"
    if trace_id in span_ids and span_id not in span_ids[trace_id]:
        return f"span_id {span_id} is not a span of trace {trace_id}"
    return ""


def _request_lines_check(system: System, output: RunOutput, evidence: Recorder, key: str) -> None:
    span_ids: dict[str, set[str]] = {}
    for span in output.spans:
        span_ids.setdefault(span.trace_id, set()).add(span.span_id)
    pairs = lines_during_requests(system, output)
    problems = [
        f"{call.describe()}: {problem}: {line.raw[:200]}"
        for call, line in pairs
        if (problem := _request_line_problem(line, key, span_ids))
    ]
    evidence(
        SweepEvidence(
            check=f"{key} on the lines written for every request of the run "
            "(the called service's lines with the request's X-Request-ID, in its window)",
            examined=_examined(
                output, requests=len(system.journal), lines=len(pairs), spans=len(output.spans)
            ),
            expected="none",
            seen=problems[:20],
        )
    )
    assert not problems, (
        f"{len(problems)} of {len(pairs)} request lines of the run{_unsettled(output)}:\n  "
        + "\n  ".join(problems[:8])
    )


@pytest.mark.guarantee("LOG-TRACE-ID-IN-REQUEST")
def test_sweep_trace_id_in_request(
    obsconf_system: System, run_output: RunOutput, obsconf_evidence: Recorder
) -> None:
    _request_lines_check(obsconf_system, run_output, obsconf_evidence, "trace_id")


@pytest.mark.guarantee("LOG-SPAN-ID-IN-REQUEST")
def test_sweep_span_id_in_request(
    obsconf_system: System, run_output: RunOutput, obsconf_evidence: Recorder
) -> None:
    _request_lines_check(obsconf_system, run_output, obsconf_evidence, "span_id")


@pytest.mark.guarantee("LOG-TRACE-ID-RESOLVES")
def test_sweep_trace_ids_resolve(
    obsconf_system: System, run_output: RunOutput, obsconf_evidence: Recorder
) -> None:
    missing = unresolved_trace_ids(obsconf_system, run_output)
    ids = {
        str(ln.get("trace_id"))
        for lines in run_output.lines.values()
        for ln in lines
        if ln.get("trace_id")
    }
    obsconf_evidence(
        SweepEvidence(
            check="trace ids in the run's log lines that the trace store does not hold "
            "(the suite's own unsampled requests excepted)",
            examined=_examined(run_output, trace_ids=len(ids), lines=run_output.line_count()),
            expected="none",
            seen={service: tids[:10] for service, tids in missing.items()},
        )
    )
    assert not missing, (
        "log lines carry trace ids with no trace in the trace store"
        f"{_unsettled(run_output)}: "
        + "; ".join(f"{s}: {len(t)} ({', '.join(t[:3])}…)" for s, t in missing.items())
    )


@pytest.mark.guarantee("TRC-NO-ORPHANS")
def test_sweep_no_orphans(
    obsconf_system: System, run_output: RunOutput, obsconf_evidence: Recorder
) -> None:
    orphans = confirmed_orphans(obsconf_system, run_output)
    obsconf_evidence(
        SweepEvidence(
            check="spans of the run whose parent_span_id names no span of their trace (a parent "
            "the suite sent in traceparent excepted)",
            examined=_examined(
                run_output, traces=len(run_output.traces), spans=len(run_output.spans)
            ),
            expected="none",
            seen=[
                f"{s.describe()} in trace {s.trace_id}, parent {s.parent_span_id}"
                for s in orphans[:20]
            ],
        )
    )
    assert not orphans, (
        f"{len(orphans)} of the run's {len(run_output.spans)} spans are orphans"
        f"{_unsettled(run_output)}:\n  "
        + "\n  ".join(f"{s.describe()} in trace {s.trace_id}" for s in orphans[:8])
    )


@pytest.mark.guarantee("TRC-SERVICE-NAME")
def test_sweep_service_name(run_output: RunOutput, obsconf_evidence: Recorder) -> None:
    unnamed = [s for s in run_output.spans if s.service.split(":", 1)[0] in UNNAMED]
    obsconf_evidence(
        SweepEvidence(
            check="spans of the run with no service.name (empty, or the SDK's unknown_service)",
            examined=_examined(
                run_output, traces=len(run_output.traces), spans=len(run_output.spans)
            ),
            expected="none",
            seen=[s.describe() for s in unnamed[:20]],
        )
    )
    assert not unnamed, f"{len(unnamed)} of the run's spans name no service: " + ", ".join(
        s.describe() for s in unnamed[:5]
    )
