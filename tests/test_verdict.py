"""One verdict (PASS 0, FAIL 1, INCOMPLETE 6) and the deviations a target declares.

The verdict function and the results model are tested on their own; then a tiny conformance
suite (fake guarantee tests, no stack) runs through the real plugin once per exit case, so the
exit status, results.json, junit.xml and report.html are seen to agree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from obsconf.conformance.catalog import catalog
from obsconf.conformance.deviations import Deviation
from obsconf.conformance.results import (
    SCHEMA_VERSION,
    GuaranteeResult,
    Record,
    ResultsError,
    RunResults,
    fold,
    load_results,
    verdict,
)
from obsconf.conformance.target import TargetError, parse_target

REPO = Path(__file__).resolve().parent.parent
BUG = Deviation("bug", "ISSUE-7: counts twice")
NA = Deviation("not_applicable", "no endpoint answers 5xx")
MISSING = Deviation("missing_feature")


def result(
    gid: str, outcome: str, level: str = "MUST", deviation: Deviation | None = None
) -> GuaranteeResult:
    return GuaranteeResult(gid, level, gid.split("-")[0], "statement", outcome, deviation=deviation)


# --- the verdict function -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("guarantees", "stopped", "status", "exit_code", "says"),
    [
        ([result("MET-A", "passed"), result("MET-B", "passed")], None, "PASS", 0, "all 2 MUST"),
        (
            [result("MET-A", "passed"), result("MET-S", "failed", "SHOULD")],
            None,
            "PASS",
            0,
            "1 SHOULD failed (reported only)",
        ),
        ([result("MET-A", "failed"), result("MET-B", "passed")], None, "FAIL", 1, "1 of 2 MUST"),
        (
            [result("MET-A", "passed"), result("MET-B", "xpassed", deviation=BUG)],
            None,
            "FAIL",
            1,
            "1 declared bug(s) passed: remove the declaration (MET-B)",
        ),
        (  # a stale declaration fails the run whatever the level
            [result("MET-A", "passed"), result("MET-S", "xpassed", "SHOULD", BUG)],
            None,
            "FAIL",
            1,
            "MET-S",
        ),
        (
            [result("MET-A", "passed"), result("MET-B", "xfailed", deviation=BUG)],
            None,
            "PASS",
            0,
            "1 declared bug(s) failed as expected (MET-B)",
        ),
        (
            [result("MET-A", "passed"), result("TRC-ERROR-STATUS", "skipped")],
            None,
            "INCOMPLETE",
            6,
            "1 of 2 MUST were not verified: TRC-ERROR-STATUS",
        ),
        (
            [result("MET-A", "passed"), result("TRC-ERROR-STATUS", "skipped", deviation=NA)],
            None,
            "PASS",
            0,
            "1 MUST declared not_applicable (TRC-ERROR-STATUS)",
        ),
        (
            [result("MET-A", "passed"), result("MET-B", "skipped", deviation=MISSING)],
            None,
            "INCOMPLETE",
            6,
            "MET-B (missing_feature)",
        ),
        (
            [result("MET-A", "passed"), result("MET-S", "skipped", "SHOULD")],
            None,
            "PASS",
            0,
            "all 1 MUST",
        ),
        ([result("MET-A", "passed")], "interrupted", "INCOMPLETE", 6, "stopped early"),
        ([result("MET-A", "failed")], "interrupted", "FAIL", 1, "stopped early"),
        ([], None, "INCOMPLETE", 6, "no guarantee ran"),
    ],
)
def test_verdict(
    guarantees: list[GuaranteeResult], stopped: str | None, status: str, exit_code: int, says: str
) -> None:
    outcome = verdict(guarantees, stopped)
    assert (outcome.status, outcome.exit_code) == (status, exit_code), outcome.reason
    assert says in outcome.reason


def test_fold_attaches_declarations_and_a_still_failing_test_keeps_a_bug_expected() -> None:
    records = [
        Record("t.py::a", ("MET-TARGET-UP",), "call", "xfailed", "still broken"),
        Record("t.py::b", ("MET-TARGET-UP",), "call", "xpassed", "held"),
        Record("t.py::c", ("MET-REQUESTS-EXACT",), "call", "passed"),
        Record("t.py::d", ("MET-REQUESTS-EXACT",), "call", "failed", "off by one"),
        Record("t.py::e", ("TRC-ERROR-STATUS",), "setup", "skipped", "declared not_applicable"),
    ]
    folded = {g.id: g for g in fold(records, catalog(), {"MET-TARGET-UP": BUG, "X": NA})}
    assert list(folded) == [gid for gid in catalog() if gid in folded]  # catalog order
    assert folded["MET-TARGET-UP"].outcome == "xfailed"
    assert folded["MET-TARGET-UP"].message == "still broken"
    assert folded["MET-TARGET-UP"].deviation == BUG
    assert folded["MET-REQUESTS-EXACT"].outcome == "failed"
    assert folded["MET-REQUESTS-EXACT"].message == "off by one"
    assert folded["MET-REQUESTS-EXACT"].tests == ("t.py::c", "t.py::d")
    assert folded["TRC-ERROR-STATUS"].outcome == "skipped"
    assert folded["TRC-ERROR-STATUS"].deviation is None


def test_results_round_trip_and_schema_versions(tmp_path: Path) -> None:
    results = RunResults(
        guarantees=(result("MET-A", "xfailed", deviation=BUG), result("MET-B", "passed")),
        target="t",
        faults=("no-inject",),
        duration_s=1.5,
        deviations={"MET-A": BUG, "TRC-ERROR-STATUS": NA},
    )
    data = results.to_dict()
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["verdict"] == {"status": "PASS", "exit_code": 0, "reason": results.verdict.reason}
    assert data["guarantees"][0]["deviation"] == {"kind": "bug", "reason": BUG.reason}
    assert data["deviations"]["TRC-ERROR-STATUS"]["kind"] == "not_applicable"
    assert RunResults.from_dict(json.loads(json.dumps(data))) == results
    old = {k: v for k, v in data.items() if k not in ("schema_version", "verdict", "deviations")}
    assert RunResults.from_dict(old).schema_version == 1  # unversioned: the first shape
    with pytest.raises(ResultsError, match="schema_version 99 is not readable"):
        RunResults.from_dict({**data, "schema_version": 99})
    with pytest.raises(ResultsError, match="unknown outcome 'weird'"):
        RunResults.from_dict({**data, "guarantees": [{"id": "MET-A", "outcome": "weird"}]})
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ResultsError, match="bad.json: cannot read results"):
        load_results(tmp_path / "bad.json")


# --- the manifest in the target file ------------------------------------------------------


def base_target(**extra: Any) -> dict[str, Any]:
    return {
        "name": "fake",
        "services": {r: {"url": f"http://127.0.0.1:{9000 + i}"} for i, r in enumerate(ROLES)},
        "backends": {
            "prometheus": "http://127.0.0.1:1",
            "logs": "http://127.0.0.1:2",
            "traces": "http://127.0.0.1:3",
        },
        **extra,
    }


ROLES = ("user", "order", "inventory")


def test_target_declares_deviations_in_both_forms() -> None:
    target = parse_target(
        base_target(
            deviations={
                "MET-TARGET-UP": {"bug": "ISSUE-7: counts twice"},
                "TRC-ERROR-STATUS": {"not_applicable": "no 5xx path"},
                "PROP-TRACESTATE-PASSED": "missing_feature",
            }
        )
    )
    assert target.deviations == {
        "MET-TARGET-UP": BUG,
        "TRC-ERROR-STATUS": Deviation("not_applicable", "no 5xx path"),
        "PROP-TRACESTATE-PASSED": MISSING,
    }
    assert parse_target(base_target()).deviations == {}


@pytest.mark.parametrize(
    ("deviations", "error"),
    [
        (
            {"TRC-EROR-STATUS": "not_applicable"},
            "deviations.TRC-EROR-STATUS: unknown guarantee id (see conformance/catalog.yaml); "
            "did you mean TRC-ERROR-STATUS?",
        ),
        ({"MET-TARGET-UP": "wontfix"}, "deviations.MET-TARGET-UP: unknown deviation 'wontfix'"),
        ({"MET-TARGET-UP": "bug"}, "deviations.MET-TARGET-UP: a declared bug needs a reason"),
        ({"MET-TARGET-UP": {"bug": ""}}, "deviations.MET-TARGET-UP: a declared bug needs a reason"),
        ({"MET-TARGET-UP": {"bug": 7}}, "deviations.MET-TARGET-UP.bug: the reason must be"),
        ({"MET-TARGET-UP": {"bug": "a", "x": "b"}}, "deviations.MET-TARGET-UP: must be one of"),
        (["MET-TARGET-UP"], "deviations: must be a mapping"),
    ],
)
def test_a_bad_declaration_is_rejected_with_its_path(deviations: Any, error: str) -> None:
    with pytest.raises(TargetError) as failure:
        parse_target(base_target(deviations=deviations), "theirs.yaml")
    assert str(failure.value).startswith(f"theirs.yaml: {error}")


# --- the whole chain: plugin -> exit status, results.json, junit.xml, report.html ----------

SHOULD = "MET-ROUTE-CARDINALITY"
FAKE_SUITE = f"""
import json, os
from pathlib import Path

import pytest

ACT = json.loads(os.environ["OBSCONF_FAKE_ACT"])  # guarantee id -> pass | fail | skip


def act(gid):
    with Path(os.environ["OBSCONF_FAKE_RAN"]).open("a") as ran:
        ran.write(gid + "\\n")
    what = ACT.get(gid, "pass")
    if what == "fail":
        raise AssertionError(gid + " broken on purpose")
    if what == "skip":
        pytest.skip("the target declares no capabilities.error_hook")


@pytest.mark.guarantee("MET-TARGET-UP")
def test_up():
    act("MET-TARGET-UP")


@pytest.mark.guarantee("TRC-ERROR-STATUS")
def test_error_status():
    act("TRC-ERROR-STATUS")


@pytest.mark.guarantee("{SHOULD}")
def test_should():
    act("{SHOULD}")
"""


def run_fake_suite(
    tmp_path: Path, act: dict[str, str], deviations: dict[str, Any] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], list[str]]:
    (tmp_path / "test_fake.py").write_text(FAKE_SUITE)
    target = tmp_path / "fake.yaml"
    target.write_text(
        yaml.safe_dump(base_target(**({"deviations": deviations} if deviations else {})))
    )
    ran = tmp_path / "ran.txt"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OBSCONF_FAKE_ACT": json.dumps(act),
        "OBSCONF_FAKE_RAN": str(ran),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-p", "obsconf", "-q"]
        + ["-p", "no:cacheprovider", "--rootdir", str(tmp_path), f"--target={target}"]
        + [f"--out={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    return proc, results, ran.read_text().split() if ran.exists() else []


@pytest.mark.parametrize(
    ("act", "deviations", "exit_code", "status", "outcomes"),
    [
        ({}, None, 0, "PASS", {"MET-TARGET-UP": "passed"}),
        ({"MET-TARGET-UP": "fail"}, None, 1, "FAIL", {"MET-TARGET-UP": "failed"}),
        ({SHOULD: "fail"}, None, 0, "PASS", {SHOULD: "failed"}),
        ({"TRC-ERROR-STATUS": "skip"}, None, 6, "INCOMPLETE", {"TRC-ERROR-STATUS": "skipped"}),
        (
            {"TRC-ERROR-STATUS": "fail"},
            {"TRC-ERROR-STATUS": {"not_applicable": "no 5xx path"}},
            0,
            "PASS",
            {"TRC-ERROR-STATUS": "skipped"},
        ),
        (
            {"MET-TARGET-UP": "fail"},
            {"MET-TARGET-UP": {"bug": "ISSUE-7: scrape fails"}},
            0,
            "PASS",
            {"MET-TARGET-UP": "xfailed"},
        ),
        (
            {},
            {"MET-TARGET-UP": {"bug": "ISSUE-7: scrape fails"}},
            1,
            "FAIL",
            {"MET-TARGET-UP": "xpassed"},
        ),
        (
            {},
            {"TRC-ERROR-STATUS": "missing_feature"},
            6,
            "INCOMPLETE",
            {"TRC-ERROR-STATUS": "skipped"},
        ),
    ],
    ids=[
        "pass",
        "must-fails",
        "should-fails",
        "must-skipped",
        "not-applicable",
        "bug-fails-as-declared",
        "bug-passes",
        "missing-feature",
    ],
)
def test_exit_status_results_and_reports_agree(
    tmp_path: Path,
    act: dict[str, str],
    deviations: dict[str, Any] | None,
    exit_code: int,
    status: str,
    outcomes: dict[str, str],
) -> None:
    proc, results, ran = run_fake_suite(tmp_path, act, deviations)
    assert proc.returncode == exit_code, proc.stdout[-3000:]
    assert results["verdict"]["status"] == status
    assert results["verdict"]["exit_code"] == exit_code
    seen = {g["id"]: g["outcome"] for g in results["guarantees"]}
    assert {gid: seen[gid] for gid in outcomes} == outcomes
    assert f"verdict: {status} (exit {exit_code})" in proc.stdout
    page = (tmp_path / "out" / "report.html").read_text()
    assert f'class="verdict {status}"' in page
    assert f"exit status {exit_code}" in page
    suites = ET.parse(tmp_path / "out" / "junit.xml").getroot().findall("testsuite")
    assert {s.find("./properties/property[@name='verdict']").get("value") for s in suites} == {
        status
    }
    for gid, declared in (deviations or {}).items():
        kind = declared if isinstance(declared, str) else next(iter(declared))
        assert results["deviations"][gid]["kind"] == kind
        assert next(g for g in results["guarantees"] if g["id"] == gid)["deviation"]["kind"] == kind
        assert f"declared {kind}" in page and 'id="deviations"' in page
        case = (
            ET.parse(tmp_path / "out" / "junit.xml").getroot().find(f".//testcase[@name='{gid}']")
        )
        prop = case.find("./properties/property[@name='deviation']")
        assert prop is not None and prop.get("value").startswith(kind)
        if kind != "bug":
            assert gid not in ran, f"a {kind} guarantee must not run"
        else:
            assert gid in ran


def test_a_passing_declared_bug_is_named_in_every_output(tmp_path: Path) -> None:
    proc, results, _ = run_fake_suite(
        tmp_path, {}, {"MET-TARGET-UP": {"bug": "ISSUE-7: scrape fails"}}
    )
    assert "XPASS" in proc.stdout and "ISSUE-7" in proc.stdout
    g = next(g for g in results["guarantees"] if g["id"] == "MET-TARGET-UP")
    assert "declared bug: ISSUE-7: scrape fails" in g["message"]
    assert "remove the declaration" in g["message"]
    case = (
        ET.parse(tmp_path / "out" / "junit.xml")
        .getroot()
        .find(".//testcase[@name='MET-TARGET-UP']")
    )
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "xpass"
    page = (tmp_path / "out" / "report.html").read_text()
    assert '<details class="g xpassed" id="g-MET-TARGET-UP" open>' in page
    assert "<b>XPASS</b>" in page  # listed under Failures at the top


# --- live: the reference services on a real stack ------------------------------------------


@pytest.fixture(scope="module")
def stack_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from obsconf.stack.local import LocalStack

    with LocalStack() as stack:
        path = tmp_path_factory.mktemp("verdict") / "endpoints.json"
        path.write_text(json.dumps(stack.endpoints.as_dict()))
        yield path


def obsconf_run(tmp_path: Path, endpoints: Path, deviations: dict[str, Any] | None) -> Any:
    """`obsconf run` of MET-TARGET-UP and TRC-ERROR-STATUS against the reference services,
    with a target that declares no error hook (and `deviations`)."""
    data = yaml.safe_load((REPO / "targets" / "reference.yaml").read_text())
    del data["capabilities"]["error_hook"]
    if deviations:
        data["deviations"] = deviations
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "no-hook.yaml"
    target.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "obsconf.conformance.cli",
            "run",
            f"--target={target}",
            f"--out={out}",
        ]
        + [f"--stack-endpoints={endpoints}", "-k", "MET-TARGET-UP or TRC-ERROR-STATUS"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    return proc, load_results(out / "results.json")


@pytest.mark.stack
def test_live_a_skipped_must_is_incomplete_and_declarations_decide(
    tmp_path: Path, stack_endpoints: Path
) -> None:
    proc, results = obsconf_run(tmp_path / "a", stack_endpoints, None)
    assert proc.returncode == 6, proc.stdout[-3000:]
    assert results.verdict.status == "INCOMPLETE"
    assert results.guarantee("TRC-ERROR-STATUS").outcome == "skipped"
    assert results.guarantee("MET-TARGET-UP").outcome == "passed"

    proc, results = obsconf_run(
        tmp_path / "b",
        stack_endpoints,
        {
            "TRC-ERROR-STATUS": {"not_applicable": "no endpoint answers 5xx"},
            "MET-TARGET-UP": {"bug": "ISSUE-1: believed broken, but is not"},
        },
    )
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert results.verdict.status == "FAIL"
    assert results.guarantee("MET-TARGET-UP").outcome == "xpassed"
    assert results.guarantee("TRC-ERROR-STATUS").outcome == "skipped"
    assert "1 MUST declared not_applicable (TRC-ERROR-STATUS)" in results.verdict.reason
