"""The HTML report, JUnit XML and run comparison, on recorded results (no stack needed)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from obsconf.conformance.evidence import TraceEvidence
from obsconf.conformance.results import RunResults
from obsconf.conformance.traces.findings import Finding
from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.render import render_tree
from obsconf.reports.compare import compare_results, render_comparison
from obsconf.reports.html import render_report, write_report
from obsconf.reports.junit import write_junit
from obsconf.reports.waterfall import MAX_ROWS, waterfall_rows

DATA = Path(__file__).resolve().parent / "data"
GRAFANA = "http://grafana.example:3000"


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


@pytest.fixture(scope="module")
def no_inject_data() -> dict[str, Any]:
    return load("results_no_inject.json")


@pytest.fixture(scope="module")
def passing_data() -> dict[str, Any]:
    return load("results_pass.json")


@pytest.fixture(scope="module")
def no_inject(no_inject_data: dict[str, Any]) -> RunResults:
    return RunResults.from_dict(no_inject_data)


@pytest.fixture(scope="module")
def passing(passing_data: dict[str, Any]) -> RunResults:
    return RunResults.from_dict(passing_data)


def guarantee(results: dict[str, Any], gid: str) -> dict[str, Any]:
    """One guarantee of a raw results document (to edit it before reading it as a model)."""
    return next(g for g in results["guarantees"] if g["id"] == gid)


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


def external_refs(page: str) -> list[str]:
    """Every src/href value that points off the page."""
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", page, flags=re.I)
    return [r for r in refs if not r.startswith("#")]


def synthetic_trace_results(spans: list[dict[str, Any]], flagged: str) -> RunResults:
    """Results with one failed trace guarantee whose evidence holds `spans`."""
    finding = {
        "code": "orphan",
        "span_id": flagged,
        "service": "order-service",
        "message": f"span {flagged} has a parent that is not in the trace.",
        "likely_cause": "the parent span was not exported",
    }
    evidence = {
        "kind": "trace",
        "trace_id": spans[0]["trace_id"],
        "check": "huge trace",
        "request": "POST /api/users -> 201",
        "findings": [finding],
        "gap": "",
        "spans": spans,
    }
    return RunResults.from_dict(
        {
            "target": "synthetic",
            "faults": [],
            "duration_s": 1.0,
            "guarantees": [
                {
                    "id": "TRC-NO-ORPHANS",
                    "level": "MUST",
                    "family": "TRC",
                    "statement": "Every parent_span_id in a trace names a span of that trace.",
                    "outcome": "failed",
                    "message": "AssertionError: orphan",
                    "tests": ["conformance/test_traces.py::test_no_orphans"],
                    "evidence": [evidence],
                }
            ],
        }
    )


def span(i: int, parent: str, name: str, service: str = "order-service") -> dict[str, Any]:
    start = 1_000_000_000 + i * 50_000
    return {
        "trace_id": "c" * 32,
        "span_id": f"{i:016x}",
        "parent_span_id": parent,
        "name": name,
        "kind": "CLIENT" if i else "SERVER",
        "service": service,
        "start_ns": start,
        "end_ns": start + 40_000,
        "status": "UNSET",
        "status_message": "",
    }


def test_report_has_every_guarantee_and_the_verdict(no_inject: RunResults) -> None:
    page = render_report(no_inject)
    assert page.startswith("<!DOCTYPE html>")
    for g in no_inject.guarantees:
        assert f'id="g-{g.id}"' in page
    assert 'class="verdict FAIL"' in page
    assert "8 of 39 MUST guarantees failed" in page
    assert "no-inject" in page


def test_passing_run_says_pass(passing: RunResults) -> None:
    page = render_report(passing)
    assert 'class="verdict PASS"' in page
    assert all(f'id="g-{g.id}"' in page for g in passing.guarantees)
    assert '<details class="g failed"' not in page


def test_report_is_self_contained(no_inject: RunResults) -> None:
    page = render_report(no_inject)
    assert "<script src" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page
    assert external_refs(page) == []


def test_grafana_links_are_the_only_external_refs(no_inject: RunResults) -> None:
    page = render_report(no_inject, grafana_url=GRAFANA)
    refs = external_refs(page)
    assert refs, "trace ids should link to Grafana"
    for ref in refs:
        assert ref.startswith(f"{GRAFANA}/explore?"), ref
    assert any("aa520dfd03986a5db7c9aa1b83bb900f" in r for r in refs)


def test_failures_are_expanded_and_first_in_their_family(no_inject: RunResults) -> None:
    page = render_report(no_inject)
    assert re.search(r'<details class="g failed" id="g-TRC-ONE-TRACE-PER-FLOW" open>', page)
    assert re.search(r'<details class="g passed" id="g-MET-TARGET-UP">', page)
    trc = page[page.index('id="f-TRC"') :]
    trc = trc[: trc.index("</section>")]
    outcomes = re.findall(r'<details class="g (\w+)"', trc)
    assert outcomes == sorted(outcomes, key=lambda o: o != "failed")
    assert outcomes.count("failed") == 3


def test_waterfall_marks_the_gap(no_inject: RunResults) -> None:
    page = render_report(no_inject)
    section = page[page.index('id="g-TRC-ONE-TRACE-PER-FLOW"') :]
    section = section[: section.index("</details>\n")]
    drawn = svgs(section)
    assert len(drawn) == 1
    svg = drawn[0]
    evidence = no_inject.guarantee("TRC-ONE-TRACE-PER-FLOW").evidence[0]
    assert isinstance(evidence, TraceEvidence)
    # one row per span, labelled `service: name [KIND]`
    assert svg.count('<g class="span') == len(evidence.spans)
    assert "user-service: publish user.created [PRODUCER]" in svg
    # the split traces are grouped under their trace ids
    for trace_id in {s.trace_id for s in evidence.spans}:
        assert f"trace {trace_id}" in svg
    assert svg.count("SEPARATE trace") == 2
    # the finding spans are red, with the marker, and the gap sentence sits above the SVG
    assert svg.count('<g class="span gap">') == 2
    assert "▶ order-service: process user.created [CONSUMER]" in svg
    gap = section.index('class="gapline"')
    assert gap < section.index("<svg")
    assert "context was not injected on publish" in section[gap : section.index("<svg")]


def test_evidence_shows_query_and_both_sides(no_inject: RunResults) -> None:
    page = render_report(no_inject)
    section = page[page.index('id="g-PROP-TRACESTATE-PASSED"') :]
    section = section[: section.index("</details>")]
    assert "NATS subscription on user.created" in section
    assert 'class="cmp differ"' in section
    assert "obsconf=t61rcWkgMzE,other=v1" in section
    logsql = page[page.index('id="g-LOG-CONSUMER-CORRELATED"') :]
    assert "LogsQL" in logsql[:4000]
    assert "app_name:=&quot;order-service&quot;" in logsql[:4000]


def test_everything_is_escaped_and_long_values_truncated(no_inject_data: dict[str, Any]) -> None:
    results = copy.deepcopy(no_inject_data)
    g = guarantee(results, "PROP-TRACESTATE-PASSED")
    g["statement"] = "<script>alert(1)</script>"
    g["evidence"][0]["seen"] = "x" * 5000
    g["evidence"][0]["check"] = '"><img src=x onerror=alert(1)>'
    page = render_report(RunResults.from_dict(results))
    assert "<script>alert" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert re.search(r"… \d+ more chars", page)
    assert "x" * 5000 not in page


def test_huge_trace_collapses_and_stays_small() -> None:
    spans = [span(0, "", "POST /api/users", "user-service")]
    spans += [span(i, spans[0]["span_id"], "SELECT") for i in range(1, 1001)]
    spans += [
        span(i, spans[0]["span_id"], "INSERT", "inventory-service") for i in range(1001, 1500)
    ]
    flagged = spans[777]["span_id"]
    page = render_report(synthetic_trace_results(spans, flagged))
    assert len(spans) == 1500
    assert len(page.encode()) < 1_000_000
    (svg,) = svgs(page)
    assert re.search(r"… 998 more order-service: SELECT", svg)  # first + flagged drawn
    assert re.search(r"… 498 more inventory-service: INSERT", svg)
    assert svg.count('<g class="span') == 4
    assert svg.count('<g class="span gap">') == 1


def test_waterfall_folds_siblings_as_the_text_tree_does() -> None:
    """Two interleaved groups of same-named siblings: each folds right after its first span,
    in the waterfall as in the failure message's tree, and a flagged span stays where it is."""
    root = span(0, "", "POST /api/users", "user-service")
    kids = [span(i, root["span_id"], "SELECT" if i % 2 else "INSERT") for i in range(1, 60)]
    spans = [Span(**s) for s in [root, *kids]]
    flagged = kids[10]["span_id"]  # a SELECT
    finding = Finding("orphan", flagged, "order-service", "flagged.", "test")
    rows = waterfall_rows(spans, spans[0].trace_id, {flagged})
    drawn = [(r.kind, r.span.name if r.span else r.text, r.count) for r in rows if r.depth == 1]
    assert drawn == [
        ("span", "SELECT", 0),
        ("more", "order-service: SELECT", 28),
        ("span", "INSERT", 0),
        ("more", "order-service: INSERT", 28),
        ("span", "SELECT", 0),
    ]
    lines = render_tree(spans, [finding]).splitlines()[2:7]
    assert [re.sub(r" \[CLIENT\].*", "", line) for line in lines] == [
        "├─ order-service: SELECT",
        "├─ … 28 more `SELECT` spans (order-service)",
        "├─ order-service: INSERT",
        "├─ … 28 more `INSERT` spans (order-service)",
        "└─ order-service: SELECT",
    ]


def test_huge_trace_caps_rows_and_keeps_the_gap() -> None:
    spans = [span(0, "", "POST /api/users", "user-service")]
    spans += [span(i, f"{i - 1:016x}", f"step {i}") for i in range(1, 1500)]  # 1500 deep
    flagged = spans[1200]["span_id"]
    page = render_report(synthetic_trace_results(spans, flagged))
    assert len(page.encode()) < 1_000_000
    (svg,) = svgs(page)
    assert f"waterfall capped at {MAX_ROWS} rows" in svg
    assert svg.count('<g class="span') <= MAX_ROWS + 1
    assert "▶ order-service: step 1200 [CLIENT]" in svg


def test_capped_waterfall_counts_each_hidden_span_once() -> None:
    """A second trace past the cap: its header row is not counted as its spans again."""
    chain = [span(0, "", "POST /api/users", "user-service")]
    chain += [span(i, f"{i - 1:016x}", f"step {i}") for i in range(1, 400)]
    other = [{**span(i, "", f"other {i}"), "trace_id": "d" * 32} for i in range(500, 505)]
    (svg,) = svgs(render_report(synthetic_trace_results(chain + other, chain[-1]["span_id"])))
    drawn_spans = MAX_ROWS - 1  # the cap, less the flow trace's header row
    hidden_spans = len(chain) + len(other) - drawn_spans - 1  # the flagged span is still drawn
    assert f"({hidden_spans} spans) not drawn" in svg


def test_write_report(tmp_path: Path, no_inject: RunResults) -> None:
    path = write_report(no_inject, tmp_path / "out" / "report.html")
    assert path.exists()
    assert path.read_text(encoding="utf-8") == render_report(no_inject)
    assert path.stat().st_size < 1_000_000


def test_junit(tmp_path: Path, no_inject: RunResults, passing: RunResults) -> None:
    root = ET.parse(write_junit(no_inject, tmp_path / "junit.xml")).getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 42
    assert len(root.findall("./testsuite/testcase/failure")) == 8
    assert {s.get("name") for s in root.findall("testsuite")} == {
        "MET",
        "LOG",
        "TRC",
        "PROP",
        "LOAD",
    }
    case = root.find("./testsuite[@name='TRC']/testcase[@name='TRC-SINGLE-ROOT']")
    assert case is not None and case.get("classname") == "TRC"
    failure = case.find("failure")
    assert failure is not None and "consume span" in (failure.text or "")
    level = case.find("./properties/property[@name='level']")
    assert level is not None and level.get("value") == "MUST"
    ok = ET.parse(write_junit(passing, tmp_path / "ok.xml")).getroot()
    assert len(ok.findall("./testsuite/testcase")) == 42
    assert ok.findall("./testsuite/testcase/failure") == []


def test_junit_should_failure_and_skip(tmp_path: Path, passing_data: dict[str, Any]) -> None:
    results = copy.deepcopy(passing_data)
    guarantee(results, "MET-ROUTE-CARDINALITY")["outcome"] = "failed"
    guarantee(results, "MET-TARGET-UP")["outcome"] = "skipped"
    root = ET.parse(write_junit(RunResults.from_dict(results), tmp_path / "j.xml")).getroot()
    case = root.find(".//testcase[@name='MET-ROUTE-CARDINALITY']")
    assert case is not None and case.find("failure") is not None
    assert case.find("./properties/property[@name='level']").get("value") == "SHOULD"
    assert root.find(".//testcase[@name='MET-TARGET-UP']/skipped") is not None
    assert root.get("failures") == "1" and root.get("skipped") == "1"


def test_compare(no_inject: RunResults, passing: RunResults) -> None:
    failed = sorted(g.id for g in no_inject.guarantees if g.outcome == "failed")
    broke = compare_results(passing, no_inject)
    assert sorted(broke["newly_failed"]) == failed
    assert broke["fixed"] == broke["still_failing"] == []
    assert broke["new_guarantees"] == broke["removed"] == []
    healed = compare_results(no_inject, passing)
    assert sorted(healed["fixed"]) == failed
    assert healed["newly_failed"] == []
    assert compare_results(no_inject, no_inject)["still_failing"] == guarantee_ids(
        no_inject, "failed"
    )
    text = render_comparison(broke)
    assert text.startswith("8 newly failed, 0 fixed")
    assert "TRC-SINGLE-ROOT" in text and "passed -> failed" in text


def test_compare_added_and_removed(passing_data: dict[str, Any]) -> None:
    new = copy.deepcopy(passing_data)
    gone = new["guarantees"].pop(0)
    new["guarantees"].append({**gone, "id": "MET-NEW-ONE"})
    diff = compare_results(RunResults.from_dict(passing_data), RunResults.from_dict(new))
    assert diff["removed"] == [gone["id"]]
    assert diff["new_guarantees"] == ["MET-NEW-ONE"]
    assert "removed (1)" in render_comparison(diff)


def guarantee_ids(results: RunResults, outcome: str) -> list[str]:
    return [g.id for g in results.guarantees if g.outcome == outcome]
