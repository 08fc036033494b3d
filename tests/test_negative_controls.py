"""Negative controls: the suite catches every fault mode, and only what each one breaks.

Runs the real conformance suite once with no fault (everything passes) and once per fault mode
of the reference services, on stacks of their own (three side by side,
`OBSCONF_MATRIX_WORKERS`: the runs mostly wait on backends), with 6 LOAD flows, and judges
each run against the reference's table (reference_services/negative_controls.yaml).
A fault run covers the families the fault can affect (by the table's claim); the baselines
cover everything. The reference's link variant
(consumers start a new trace linked to the publish span) runs the baseline and every fault
that breaks a NATS hop, so each hop fault is proven caught in both consumer relations; the
variant shipping logs over OTLP runs the baseline and every log fault, so each is proven caught
both ways logs arrive. Every other implementation (`IMPLEMENTATIONS`: the Go inventory service)
adds its baseline and one row per fault of its own table, run in its target (only it receives
the fault).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from obsconf.reference_services.negative_controls import (
    IMPLEMENTATIONS,
    MatrixRun,
    Verdict,
    all_faults,
    render_matrix,
    run_matrix,
)
from obsconf.stack.local import LocalStack

pytestmark = pytest.mark.stack
REPO = Path(__file__).resolve().parent.parent
LINK_TARGET = REPO / "targets" / "reference-link.yaml"
# The reference shipping its logs as OTLP log records: each log fault is caught that way too.
OTLP_LOGS_TARGET = REPO / "targets" / "reference-otlp-logs.yaml"
# The seed's polyglot system (Python user, Rust order, Go inventory): its baseline passes every
# guarantee, on the matrix's shared stacks.
POLYGLOT_TARGET = REPO / "targets" / "polyglot.yaml"
LOG_FAULTS = (
    "drop-logs",
    "log-no-trace-id",
    "log-random-trace-id",
    "plain-text-logs",
    "consumer-log-before-context",
)
# The faults that break a flow where it crosses NATS: each must be caught in link mode too.
HOP_FAULTS = (
    "no-inject",
    "consumer-new-root",
    "shared-consumer-context",
    "publish-span-not-exported",
    "wrong-publish-kind",
    "wrong-consume-kind",
    "skewed-span-clock",
    "drop-tracestate",
    "consumer-log-before-context",
)
RUNS = [
    *[MatrixRun(f) for f in ["", *all_faults()]],
    *[MatrixRun(f, LINK_TARGET) for f in ["", *HOP_FAULTS]],
    *[MatrixRun(f, OTLP_LOGS_TARGET) for f in ["", *LOG_FAULTS]],
    *[run for impl in IMPLEMENTATIONS.values() for run in MatrixRun.of(impl)],
    MatrixRun("", POLYGLOT_TARGET),
]
# Stacks side by side (the runs wait on backends more than they compute), one run at a time
# on each (see negative_controls.run_matrix).
WORKERS = int(os.environ.get("OBSCONF_MATRIX_WORKERS", "3"))


def _run_id(run: MatrixRun) -> str:
    variant = {None: "", LINK_TARGET: "link-", OTLP_LOGS_TARGET: "otlp-logs-"}.get(
        run.target, f"{getattr(run.target, 'stem', '')}-"
    )
    return f"{variant}{run.fault or 'no-fault'}"


@pytest.fixture(scope="module")
def matrix_stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Stacks used by the matrix runs only (no other services consume their streams)."""
    with contextlib.ExitStack() as started:
        paths = []
        for index in range(max(1, WORKERS)):
            stack = started.enter_context(LocalStack())
            path = tmp_path_factory.mktemp(f"matrix{index}") / "endpoints.json"
            path.write_text(json.dumps(stack.endpoints.as_dict()))
            paths.append(path)
        yield paths


@pytest.fixture(scope="module")
def matrix_stack(matrix_stacks: list[Path]) -> Path:
    return matrix_stacks[0]


@pytest.fixture(scope="module")
def results(
    request: pytest.FixtureRequest, matrix_stacks: list[Path]
) -> Iterator[dict[MatrixRun, tuple[Verdict, str | None]]]:
    """The verdict of every selected run, all computed up front in parallel; the matrix is
    printed once the module is done."""
    selected = [
        item.callspec.params["run"]
        for item in request.session.items
        if item.originalname == "test_suite_catches_exactly_what_the_fault_breaks"
    ]
    judged = run_matrix(selected, matrix_stacks)
    yield judged
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if judged and reporter is not None:
        reporter.write_line("\nnegative-control matrix (F = failed, . = passed, - = not run):")
        for line in render_matrix([verdict for verdict, _ in judged.values()]).splitlines():
            reporter.write_line(line)


def test_hop_and_log_faults_are_reference_faults() -> None:
    assert set(HOP_FAULTS) | set(LOG_FAULTS) <= set(all_faults())


@pytest.mark.parametrize("run", RUNS, ids=_run_id)
def test_suite_catches_exactly_what_the_fault_breaks(
    run: MatrixRun, results: dict[MatrixRun, tuple[Verdict, str | None]]
) -> None:
    verdict, first_mismatch = results[run]
    if first_mismatch:
        warnings.warn(first_mismatch, stacklevel=1)
    assert verdict.ok, f"fault {run.label}:\n  " + "\n  ".join(verdict.problems)


def test_obsconf_run_writes_report_results_and_junit(matrix_stack: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "obsconf.reference_services.cli",
            "run",
            f"--out={out}",
            f"--stack-endpoints={matrix_stack}",
            "-k",
            "MET-TARGET-UP or PROP-REQUEST-ID-ECHOED",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert {g["id"] for g in results["guarantees"]} == {"MET-TARGET-UP", "PROP-REQUEST-ID-ECHOED"}
    assert all(g["outcome"] == "passed" for g in results["guarantees"])
    assert (out / "junit.xml").read_text().count("<testcase") == 2
    assert "report: " in proc.stdout and (out / "report.html").stat().st_size > 1000


def test_obsconf_reproduce_shows_the_broken_hop(matrix_stack: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "obsconf.reference_services.cli",
            "reproduce",
            "no-inject",
            f"--out={tmp_path}",
            f"--stack-endpoints={matrix_stack}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "GAP" in proc.stdout and "no traceparent" in proc.stdout
    assert "caught: all" in proc.stdout and "report: " in proc.stdout
