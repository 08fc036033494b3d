"""The reference services' negative controls: which fault breaks which guarantee, and the
matrix that proves the suite catches each fault, and only what it breaks.

The table is `negative_controls.yaml` (fault -> the guarantee ids it breaks); `table()` reads
and checks it against the fault modes (`faults.FAULTS`) and the guarantee catalog
(`obsconf.conformance.catalog`), which itself names no implementation.

For a fault F the claim is: every guarantee listed under F fails, and every guarantee of a
family with no guarantee listed under F passes (a fault breaks what it names and nothing
unrelated). With no fault, everything passes. `run_suite` runs the real suite in a subprocess
against a running stack, so each run starts its own reference services with the fault on.

A run may be limited to some families (`families_of(fault)`: those F can affect, by the
table's claim); `judge` then holds the guarantees of the families that did not run to
nothing. The baseline runs every family, so "everything passes" is always checked in full.

Other implementations have negative controls of their own (`IMPLEMENTATIONS`): fault modes
with the reference's names and meanings, switched by the same variable, run in a target where
only that implementation receives `{faults}`, and judged against the implementation's own
table (a fault in one service breaks less than the same fault in all three). A matrix row is
then (fault, target, table); another implementation is one more entry.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from obsconf.conformance.catalog import FAMILIES, Guarantee, catalog
from obsconf.conformance.results import Outcome
from obsconf.conformance.runner import DEFAULT_TARGET, suite_args
from obsconf.reference_services.faults import FAULTS

TABLE_FILE = Path(__file__).with_name("negative_controls.yaml")
REPO = Path(__file__).resolve().parents[2]  # the checkout: other implementations' tables


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Implementation:
    """Another implementation's negative controls: its faults run in `target`, where only it
    receives `{faults}`, and break what its own `table` (same format as ours) says."""

    name: str
    target: Path
    table: Path


IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl
    for impl in (
        Implementation(
            "inventory-go",
            REPO / "targets" / "reference-go-inventory.yaml",
            REPO / "implementations" / "inventory-go" / "negative_controls.yaml",
        ),
        Implementation(
            "order-rust",
            REPO / "targets" / "reference-rust-order.yaml",
            REPO / "implementations" / "order-rust" / "negative_controls.yaml",
        ),
    )
}


def read_table(path: Path = TABLE_FILE) -> dict[str, Any]:
    """The table as written (fault -> list of guarantee ids), unchecked."""
    return yaml.safe_load(path.read_text()) or {}


def problems(
    raw: Mapping[str, Any],
    guarantees: Mapping[str, Guarantee] | None = None,
    faults: Mapping[str, object] = FAULTS,
) -> list[str]:
    """What is wrong with a table: a fault that is no fault mode, an entry that is not a
    non-empty list of ids, an id not in the catalog, an id listed twice under one fault."""
    guarantees = catalog() if guarantees is None else guarantees
    found = []
    for fault, ids in raw.items():
        if fault not in faults:
            found.append(f"{fault}: not a fault mode of the reference services")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            found.append(f"{fault}: must be a non-empty list of guarantee ids")
            continue
        found += [f"{fault}: {gid} is not in the catalog" for gid in ids if gid not in guarantees]
        twice = sorted(gid for gid in set(ids) if ids.count(gid) > 1)
        found += [f"{fault}: {gid} is listed twice" for gid in twice]
    return found


def unbroken(
    raw: Mapping[str, Any], guarantees: Mapping[str, Guarantee] | None = None
) -> list[str]:
    """The catalog's guarantee ids that no fault of `raw` breaks (each lacks a negative control)."""
    guarantees = catalog() if guarantees is None else guarantees
    listed = {gid for ids in raw.values() if isinstance(ids, list) for gid in ids}
    return [gid for gid in guarantees if gid not in listed]


@cache
def table(path: Path = TABLE_FILE) -> dict[str, tuple[str, ...]]:
    """Fault -> the ids of the guarantees it breaks, in catalog order (checked)."""
    raw = read_table(path)
    found = problems(raw)
    if found:
        raise ValueError(f"{path}: " + "; ".join(found))
    order = {gid: index for index, gid in enumerate(catalog())}
    return {fault: tuple(sorted(ids, key=order.__getitem__)) for fault, ids in raw.items()}


def broken_by(fault: str, path: Path = TABLE_FILE) -> list[Guarantee]:
    """The guarantees a fault mode must break, in catalog order (none for an unknown name)."""
    return [catalog()[gid] for gid in table(path).get(fault, ())]


def all_faults(path: Path = TABLE_FILE) -> list[str]:
    """Every fault in the table, sorted."""
    return sorted(table(path))


# --- the matrix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    fault: str  # "" for the baseline
    outcomes: dict[str, str]  # guarantee id -> passed/failed/skipped
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def families_of(fault: str, path: Path = TABLE_FILE) -> list[str]:
    """The families with a guarantee that `fault` breaks (every family for no fault)."""
    if not fault:
        return list(FAMILIES)
    return [f for f in FAMILIES if any(g.family == f for g in broken_by(fault, path))]


# Concurrent flows of the LOAD family in a matrix run: every LOAD fault is caught at 6 (the
# suite's own default, 20, runs in the baselines of `obsconf run`); fewer flows keep the
# matrix, the costliest part of CI, short.
MATRIX_FLOWS = 6


def run_suite(
    fault: str,
    stack_endpoints: Path,
    target: Path | None = None,
    select: str | None = None,
    families: list[str] | None = None,
) -> dict:
    """Run the conformance suite once in a child process (with `fault` if given; only
    `families`, or `select`, if given); return its JSON results."""
    with tempfile.TemporaryDirectory(prefix="obsconf-matrix-") as scratch:
        results = Path(scratch) / "results.json"
        given = {
            "target": target or DEFAULT_TARGET,
            "stack_endpoints": stack_endpoints,
            "results": results,
            "flows": MATRIX_FLOWS,
            "fault": [fault] if fault else [],
        }
        selected = " or ".join(families) if families else select
        command = [sys.executable, "-m", "pytest", *suite_args(given, selected)]
        proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if not results.exists():
            raise RuntimeError(
                f"suite run with fault {fault!r} wrote no results "
                f"(exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
            )
        return json.loads(results.read_text())


def judge(
    fault: str, results: dict, ran: list[str] | None = None, path: Path = TABLE_FILE
) -> Verdict:
    """Compare one run's outcomes with what the table at `path` says `fault` breaks; `ran`
    names the families the run was limited to (None: all). A guarantee the target declares a
    bug and that failed as declared (xfailed) is as expected where a pass is."""
    outcomes = {g["id"]: g["outcome"] for g in results["guarantees"]}
    named = {g.id for g in broken_by(fault, path)} if fault else set()
    families = {catalog()[gid].family for gid in named}
    problems = []
    for gid, guarantee in catalog().items():
        if ran is not None and guarantee.family not in ran:
            continue
        outcome = outcomes.get(gid, "not run")
        if gid in named and outcome != Outcome.FAILED:
            problems.append(f"{gid} should fail under {fault} but {outcome}")
        elif guarantee.family not in families and outcome not in (Outcome.PASSED, Outcome.XFAILED):
            message = next((g["message"] for g in results["guarantees"] if g["id"] == gid), "")
            problems.append(
                f"{gid} ({'unrelated family' if fault else 'no fault'}) {outcome}: {message[:300]}"
            )
    return Verdict(fault, outcomes, tuple(problems))


@dataclass(frozen=True)
class MatrixRun:
    """One row of the matrix: a fault (or none) against a target (None: the default), judged
    by a table (the reference's, or another implementation's)."""

    fault: str
    target: Path | None = None
    table: Path = TABLE_FILE

    @property
    def label(self) -> str:
        variant = f" [{self.target.stem}]" if self.target else ""
        return f"{self.fault or '(none)'}{variant}"

    @classmethod
    def of(cls, impl: Implementation) -> list[MatrixRun]:
        """The rows of another implementation: its baseline, then each of its faults."""
        return [cls(f, impl.target, impl.table) for f in ["", *all_faults(impl.table)]]


def judged_run(run: MatrixRun, stack_endpoints: Path) -> tuple[Verdict, str | None]:
    """Run and judge one row, limited to the families its fault can affect. A mismatch is run
    once more (a timing flake on 2 busy cores must neither hide nor fake a result): the second
    verdict counts, and the first mismatch comes back as a warning to report."""
    families = families_of(run.fault, run.table)

    def once() -> Verdict:
        results = run_suite(run.fault, stack_endpoints, target=run.target, families=families)
        return replace(judge(run.fault, results, ran=families, path=run.table), fault=run.label)

    verdict = once()
    if verdict.ok:
        return verdict, None
    warning = f"{run.label}: first run mismatched, repeated: " + "; ".join(verdict.problems)
    return once(), warning


def run_matrix(
    runs: list[MatrixRun], stacks: list[Path]
) -> dict[MatrixRun, tuple[Verdict, str | None]]:
    """Judge every run, one at a time per stack, the stacks side by side. A run waits on its
    backends far more than it computes (measured: load average 0.5 on 2 cores with one run at a
    time), and runs on different stacks share nothing: no NATS consumer, scrape job or log
    stream of one can reach another."""
    free: queue.Queue[Path] = queue.Queue()
    for stack in stacks:
        free.put(stack)

    def work(run: MatrixRun) -> tuple[Verdict, str | None]:
        stack = free.get()
        try:
            return judged_run(run, stack)
        finally:
            free.put(stack)

    with ThreadPoolExecutor(max_workers=len(stacks)) as pool:
        return dict(zip(runs, pool.map(work, runs), strict=True))


def render_matrix(verdicts: list[Verdict]) -> str:
    """A text table: one row per fault, one column per guarantee (F failed, . passed,
    s skipped, - not run), the verdict at the end of the row, and the column legend below."""
    ids = list(catalog())
    mark = {Outcome.FAILED: "F", Outcome.PASSED: ".", Outcome.SKIPPED: "s", "": "-"}
    lines = [f"{'fault':<26}" + "".join(f"{i:>3}" for i in range(1, len(ids) + 1))]
    for v in verdicts:
        cells = "".join(f"{mark.get(v.outcomes.get(gid, ''), '?'):>3}" for gid in ids)
        lines.append(f"{(v.fault or '(none)'):<26}{cells}  {'ok' if v.ok else 'MISMATCH'}")
    lines.append("columns: " + ", ".join(f"{i}={gid}" for i, gid in enumerate(ids, 1)))
    return "\n".join(lines)
