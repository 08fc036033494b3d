"""Evidence is typed by kind, and results.json holds it as it always did (no stack needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsconf.conformance.evidence import (
    KINDS,
    SPAN_FIELDS,
    CompareEvidence,
    Evidence,
    ExpositionEvidence,
    FreshnessEvidence,
    LogEvidence,
    LogQueryEvidence,
    NatsEvidence,
    ReconciliationEvidence,
    ReconciliationRow,
    SignalFreshness,
    SpanEvidence,
    SweepEvidence,
    TraceEvidence,
    evidence_from_dict,
)
from obsconf.conformance.results import ResultsError, RunResults, load_results
from obsconf.conformance.traces.findings import Finding
from obsconf.conformance.traces.model import Link, Span
from tests.test_verdict import base_target

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
RECORDED = (DATA / "results_no_inject.json", DATA / "results_pass.json")

SPAN = Span(
    trace_id="a" * 32,
    span_id="b" * 16,
    parent_span_id="",
    name="POST /api/users",
    kind="SERVER",
    service="user-service",
    start_ns=1_000,
    end_ns=9_000,
    attributes={"http.route": "/api/users"},
    status="ERROR",
    status_message="boom",
    links=(Link("c" * 32, "d" * 16),),
    trace_state="k=v",
)
ONE_OF_EACH: tuple[Evidence, ...] = (
    CompareEvidence(check="c", query="q", expected={"a": [1, 2]}, seen=3.5),
    LogEvidence(check="lines", expected="none", seen=['{"msg": "x"}']),
    NatsEvidence(check="headers", query="sub", expected="00-…-01", seen=["user.created: {}"]),
    SpanEvidence(check="kinds", expected="PRODUCER", seen=["user-service: publish [CLIENT]"]),
    ExpositionEvidence(check="parses", expected="the text format", seen="line 3: bad"),
    SweepEvidence(check="sweep", expected="none", seen=[], examined={"lines": 7, "window_s": 9}),
    LogQueryEvidence(check="found", language="LogQL", query='{service_name="user"}'),
    TraceEvidence(
        check="one trace",
        trace_id="a" * 32,
        request="POST /api/users -> 201",
        findings=(Finding("orphan", "b" * 16, "user-service", "span b.", "not exported"),),
        gap="First gap: span b; likely cause: not exported.",
        spans=(SPAN,),
    ),
    ReconciliationEvidence(
        check="flows",
        rows=(ReconciliationRow("HTTP", 1, "POST /api/users -> 500"),),
        table="reconciliation of 2 flows",
        expected="2 whole flows",
        seen="1 whole",
    ),
    FreshnessEvidence(
        check="fresh",
        freshness={"traces": SignalFreshness(0.5, 1.25, 10, 0.1)},
        expected={"traces": "p99 <= 5s"},
        seen="traces p50 0.50s p99 1.25s (n=10, ±0.10s)",
    ),
)


def test_every_kind_has_a_class_and_round_trips_through_json() -> None:
    assert {type(e) for e in ONE_OF_EACH} == set(KINDS.values())
    for evidence in ONE_OF_EACH:
        data = json.loads(json.dumps(evidence.to_dict()))
        assert data["kind"] == evidence.kind
        assert evidence_from_dict(data) == evidence


def test_values_are_kept_as_results_json_holds_them() -> None:
    evidence = CompareEvidence(check="c", expected=("a", 1), seen={"x": ("y",)})
    assert evidence.expected == ["a", 1] and evidence.seen == {"x": ["y"]}
    assert CompareEvidence(check="c", expected={1}, seen=None).expected == "{1}"


def test_trace_evidence_keeps_the_fields_it_draws() -> None:
    (trace,) = (e for e in ONE_OF_EACH if isinstance(e, TraceEvidence))
    (span,) = trace.spans
    assert (span.attributes, span.links, span.trace_state) == ({}, (), "")
    assert list(trace.to_dict()["spans"][0]) == list(SPAN_FIELDS)
    assert trace.flagged == {"b" * 16}
    assert trace.gap_sentence == trace.gap
    no_gap = TraceEvidence(check="t", trace_id="a" * 32, findings=trace.findings)
    assert no_gap.gap_sentence == "span b; likely cause: not exported."


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name)
def test_recorded_results_read_typed_and_write_back_what_they_held(path: Path) -> None:
    raw = json.loads(path.read_text())
    results = load_results(path)
    written = results.to_dict()
    assert RunResults.from_dict(json.loads(json.dumps(written))).guarantees == results.guarantees
    for before, after in zip(raw["guarantees"], written["guarantees"], strict=True):
        assert len(before["evidence"]) == len(after["evidence"])
        for old, new in zip(before["evidence"], after["evidence"], strict=True):
            if old["kind"] == "logsql":  # the kind before the log store adapters
                assert (new["kind"], new["language"]) == ("logquery", "LogsQL")
                old = {**old, "kind": "logquery"}
            assert {k: new[k] for k in old} == old


def test_an_unknown_kind_is_refused_with_the_guarantee() -> None:
    raw = json.loads(RECORDED[1].read_text())
    raw["guarantees"][0]["evidence"] = [{"kind": "hunch", "check": "?"}]
    gid = raw["guarantees"][0]["id"]
    with pytest.raises(ResultsError, match=f"guarantee {gid}: unknown evidence kind 'hunch'"):
        RunResults.from_dict(raw)


FAKE_SUITE = """
import pytest

from obsconf.conformance.evidence import (
    Evidence, FreshnessEvidence, LogEvidence, ReconciliationEvidence, ReconciliationRow,
    SignalFreshness,
)


@pytest.mark.guarantee("MET-TARGET-UP")
def test_typed(obsconf_evidence):
    obsconf_evidence(LogEvidence(check="lines", expected="none", seen=("a",)))


@pytest.mark.guarantee("MET-ROUTE-CARDINALITY")
def test_untyped(obsconf_evidence):
    obsconf_evidence(kind="logs", check="lines", expected="none", seen=[])


@pytest.mark.guarantee("MET-REQUESTS-EXACT")
def test_no_kind(obsconf_evidence):
    obsconf_evidence(Evidence(check="a check of no kind"))


@pytest.mark.guarantee("LOAD-DISTINCT-TRACES")
def test_reconciliation(obsconf_evidence):
    obsconf_evidence(ReconciliationEvidence(
        check="flows", rows=(ReconciliationRow("HTTP", 0, ""),),
        table="reconciliation of 3 flows: 3 whole", expected="3 whole flows", seen="3 whole",
    ))


@pytest.mark.guarantee("LOAD-FRESHNESS")
def test_freshness(obsconf_evidence):
    obsconf_evidence(FreshnessEvidence(
        check="fresh", freshness={"logs": SignalFreshness(0.2, 0.4, 3, 0.1)},
        expected={"logs": "p99 <= 5s"}, seen="logs p50 0.20s p99 0.40s",
    ))
"""


def test_the_fixture_takes_typed_evidence_into_results_and_the_terminal(tmp_path: Path) -> None:
    (tmp_path / "test_fake.py").write_text(FAKE_SUITE)
    target = tmp_path / "fake.yaml"
    target.write_text(yaml.safe_dump(base_target()))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-p", "obsconf", "-q"]
        + ["-p", "no:cacheprovider", "--rootdir", str(tmp_path), f"--target={target}"]
        + [f"--results={tmp_path / 'results.json'}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        timeout=120,
    )
    results: dict[str, Any] = json.loads((tmp_path / "results.json").read_text())
    by_id = {g["id"]: g for g in results["guarantees"]}
    assert by_id["MET-TARGET-UP"]["evidence"] == [
        {"kind": "logs", "check": "lines", "expected": "none", "seen": ["a"], "query": ""}
    ]
    untyped = by_id["MET-ROUTE-CARDINALITY"]
    assert untyped["outcome"] == "failed" and "TypeError" in untyped["message"]
    no_kind = by_id["MET-REQUESTS-EXACT"]
    assert no_kind["outcome"] == "failed" and no_kind["evidence"] == []
    assert "of a kind results.json holds" in no_kind["message"]
    assert "not Evidence" in no_kind["message"]
    assert "reconciliation of 3 flows: 3 whole" in proc.stdout
    assert "freshness: logs p50 0.20s p99 0.40s" in proc.stdout
