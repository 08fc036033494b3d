"""The multi-implementation page (reports.matrix) on recorded results, and `obsconf run` with
several targets writing it (the runs themselves replaced: no stack here)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from obsconf.conformance import cli
from obsconf.conformance.deviations import Deviation
from obsconf.conformance.results import Outcome, RunResults, load_results, write_results
from obsconf.reports.matrix import NOT_RUN, Column, labels_for, main, matrix_rows, render_matrix

DATA = Path(__file__).resolve().parent / "data"
PASS = DATA / "results_pass.json"
NO_INJECT = DATA / "results_no_inject.json"


def _foreign(tmp_path: Path) -> Path:
    """A third implementation, derived from the failing run: it declares one of its failures a
    bug (XFAIL), declares the error hook not applicable (skipped) and names itself."""
    base = load_results(NO_INJECT)
    bug = Deviation("bug", "ISSUE-7: publish drops the context")
    na = Deviation("not_applicable", "no endpoint answers 5xx")
    guarantees = []
    for g in base.guarantees:
        if g.id == "TRC-SINGLE-ROOT":
            g = replace(g, outcome=Outcome.XFAILED, deviation=bug)
        elif g.id == "TRC-ERROR-STATUS":
            g = replace(g, outcome=Outcome.SKIPPED, deviation=na, message="not applicable")
        guarantees.append(g)
    results = RunResults(
        guarantees=tuple(guarantees),
        target="foreign",
        deviations={"TRC-SINGLE-ROOT": bug, "TRC-ERROR-STATUS": na},
    )
    return write_results(results, tmp_path / "foreign" / "results.json")


def _columns(tmp_path: Path) -> list[Column]:
    runs = [load_results(PASS), load_results(NO_INJECT), load_results(_foreign(tmp_path))]
    return [Column(label, r) for label, r in zip(labels_for(runs), runs, strict=True)]


def test_rows_are_guarantees_and_cells_the_outcome_of_each_run(tmp_path: Path) -> None:
    columns = _columns(tmp_path)
    rows = {r.id: r for r in matrix_rows(columns)}
    assert len(rows) == len(load_results(PASS).guarantees)
    root = rows["TRC-SINGLE-ROOT"]
    assert [c.outcome for c in root.cells] == [Outcome.PASSED, Outcome.FAILED, Outcome.XFAILED]
    assert root.cells[2].deviation == Deviation("bug", "ISSUE-7: publish drops the context")
    assert root.differs
    assert not rows["MET-TARGET-UP"].differs
    assert [c.outcome for c in rows["TRC-ERROR-STATUS"].cells][2] == Outcome.SKIPPED
    families = [r.family for r in matrix_rows(columns)]
    assert families == sorted(families, key=["MET", "LOG", "TRC", "PROP", "LOAD"].index)


def test_a_guarantee_one_run_did_not_run_is_marked_not_run(tmp_path: Path) -> None:
    full = load_results(PASS)
    partial = replace(full, guarantees=full.guarantees[:3], target="partial")
    rows = matrix_rows([Column("a", full), Column("b", partial)])
    last = rows[-1]
    assert [c.outcome for c in last.cells] == [full.guarantees[-1].outcome, NOT_RUN]
    assert last.differs


def test_a_declared_guarantee_that_no_run_ran_still_has_a_row() -> None:
    full = load_results(PASS)
    declared = replace(
        full,
        guarantees=tuple(g for g in full.guarantees if g.id != "TRC-ERROR-STATUS"),
        deviations={"TRC-ERROR-STATUS": Deviation("not_applicable", "no 5xx")},
    )
    rows = {r.id: r for r in matrix_rows([Column("x", declared)])}
    cell = rows["TRC-ERROR-STATUS"].cells[0]
    assert cell.outcome == NOT_RUN and cell.deviation.kind == "not_applicable"


def test_labels_are_the_target_names_with_faults_and_unique() -> None:
    runs = [load_results(PASS), load_results(NO_INJECT), load_results(PASS)]
    assert labels_for(runs) == ["reference", "reference +no-inject", "reference (2)"]


def test_the_page_shows_columns_verdicts_outcomes_and_declarations(tmp_path: Path) -> None:
    page = render_matrix(_columns(tmp_path))
    heads = re.findall(r'<th class="impl">(.*?)</th>', page)
    assert len(heads) == 3
    assert "reference" in heads[0] and ">PASS<" in heads[0]
    assert "reference +no-inject" in heads[1] and ">FAIL<" in heads[1]
    assert "foreign" in heads[2] and ">FAIL<" in heads[2]  # its other failures remain
    row = re.search(r'<tr class="differs" id="TRC-SINGLE-ROOT">(.*?)</tr>', page, re.S).group(1)
    assert [m for m in re.findall(r'class="badge \w+">(\w+)<', row)] == ["PASS", "FAIL", "XFAIL"]
    assert "declared bug: ISSUE-7: publish drops the context" in row
    assert "declared not_applicable: no endpoint answers 5xx" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_the_command_writes_a_page_and_links_each_report(tmp_path: Path) -> None:
    foreign = _foreign(tmp_path)
    (foreign.parent / "report.html").write_text("<html></html>")
    out = tmp_path / "side-by-side" / "matrix.html"
    assert main([str(out), str(PASS), str(NO_INJECT), str(foreign)]) == 0
    page = out.read_text()
    assert page.count('<th class="impl">') == 3
    assert '<a href="../foreign/report.html">foreign</a>' in page


@pytest.mark.parametrize(
    "argv", [[], ["out.html"], ["out.json", str(PASS)], ["o.html", "missing.json"]]
)
def test_the_command_rejects_bad_arguments(argv: list[str], tmp_path: Path) -> None:
    assert main([a if a.endswith(".json") and "/" in a else str(tmp_path / a) for a in argv]) == 2


def test_run_with_several_targets_writes_each_run_and_the_matrix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = {"reference": PASS, "reference-link": NO_INJECT}
    calls = []

    def fake_run(given, select=None, target=None):
        stem = Path(given["target"]).stem
        calls.append((stem, given["out"]))
        write_results(load_results(recorded[stem]), given["out"] / "results.json")
        return 0 if stem == "reference" else 1

    monkeypatch.setattr("obsconf.conformance.runner.run", fake_run)
    targets = ["targets/reference.yaml", "targets/reference-link.yaml"]
    args = cli.program(extend=False)[0].parse_args(
        ["run", *[f"--target={t}" for t in targets], f"--out={tmp_path}"]
    )
    assert cli.cmd_run(args) == 1  # one run failed
    assert calls == [
        ("reference", tmp_path / "reference"),
        ("reference-link", tmp_path / "reference-link"),
    ]
    page = (tmp_path / "matrix.html").read_text()
    assert page.count('<th class="impl">') == 2


def test_several_targets_of_one_name_get_their_own_directories(tmp_path: Path) -> None:
    targets = [Path("a/t.yaml"), Path("b/t.yaml"), Path("c/u.yaml")]
    assert cli.target_dirs(tmp_path, targets) == [tmp_path / "t", tmp_path / "t-2", tmp_path / "u"]
