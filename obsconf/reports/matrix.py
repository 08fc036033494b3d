"""Several implementations side by side: one self-contained HTML page from several runs.

    python -m obsconf.reports.matrix OUT.html A/results.json B/results.json ...

Columns are the runs (one per implementation or target, labelled by the target's name, with
its fault modes if any), rows the guarantees, grouped by family in catalog (results) order.
Each cell is the guarantee's outcome in that run (PASS, FAIL, SKIP, XFAIL, XPASS, or "not
run"), with the target's declared deviation beneath it and the message as its tooltip; the
head of each column is that run's verdict (`obsconf.conformance.results.verdict`, the one its exit
status came from) and links to the run's own report.html when there is one beside its
results.json. Rows whose outcomes differ between the columns are marked. Every run is read
through the typed results model (`load_results`).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from obsconf.conformance.catalog import FAMILIES, Level
from obsconf.conformance.deviations import Deviation
from obsconf.conformance.results import (
    GuaranteeResult,
    Outcome,
    ResultsError,
    RunResults,
    load_results,
)
from obsconf.reports.markup import esc, truncate

NOT_RUN: Final = "not run"
MAX_TOOLTIP_CHARS = 600


@dataclass(frozen=True)
class Column:
    """One implementation's run: its label, its results, and a link to its report (if any)."""

    label: str
    results: RunResults
    report: str | None = None  # href, relative to the page


@dataclass(frozen=True)
class Cell:
    outcome: Outcome | Literal["not run"]  # NOT_RUN
    deviation: Deviation | None = None
    message: str = ""


@dataclass(frozen=True)
class Row:
    id: str
    family: str
    level: Level | None  # None: only declared, in no run
    statement: str
    cells: tuple[Cell, ...]

    @property
    def differs(self) -> bool:
        """The implementations do not all have the same outcome here."""
        return len({c.outcome for c in self.cells}) > 1


def labels_for(runs: Sequence[RunResults]) -> list[str]:
    """A column label per run: the target's name (+ its faults), made unique with (2), (3)."""
    labels: list[str] = []
    for results in runs:
        base = results.target or "?"
        if results.faults:
            base += f" +{','.join(results.faults)}"
        label, n = base, 2
        while label in labels:
            label, n = f"{base} ({n})", n + 1
        labels.append(label)
    return labels


def matrix_rows(columns: Sequence[Column]) -> list[Row]:
    """One row per guarantee that any run ran or declared, grouped by family (known families
    first, in their usual order), guarantees in the order the runs list them."""
    first: dict[str, GuaranteeResult] = {}
    for column in columns:
        for g in column.results.guarantees:
            first.setdefault(g.id, g)
    declared_only = [
        gid for column in columns for gid in column.results.deviations if gid not in first
    ]
    ids = [*first, *dict.fromkeys(declared_only)]
    rows = []
    for gid in ids:
        known = first.get(gid)
        cells = []
        for column in columns:
            ran = column.results.guarantee(gid)
            if ran is None:
                cells.append(Cell(NOT_RUN, column.results.deviations.get(gid)))
            else:
                cells.append(Cell(ran.outcome, ran.deviation, ran.message))
        rows.append(
            Row(
                id=gid,
                family=known.family if known else gid.split("-", 1)[0],
                level=known.level if known else None,
                statement=known.statement if known else "",
                cells=tuple(cells),
            )
        )
    order = {family: index for index, family in enumerate(FAMILIES)}
    return sorted(rows, key=lambda r: order.get(r.family, len(order)))  # stable within family


CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;color:#1d2330;background:#f4f5f7}
main{padding:18px 20px 60px}
h1{font-size:22px;margin:0 0 4px}
.muted{color:#6b7280}
table.m{border-collapse:collapse;background:#fff;font-size:13px;margin-top:12px}
table.m th,table.m td{border:1px solid #dfe2e7;padding:4px 8px;vertical-align:top}
table.m thead th{position:sticky;top:0;background:#fff;z-index:1;text-align:center}
th.impl a{color:inherit}
.verdict{display:block;margin-top:4px;border-radius:4px;color:#fff;font-weight:700;
 padding:2px 6px}
.verdict.PASS{background:#1e8e3e}.verdict.FAIL{background:#c5221f}
.verdict.INCOMPLETE{background:#b06000}
.counts{display:block;font-weight:400;font-size:11px;color:#6b7280;margin-top:3px}
tr.fam th{background:#eef0f3;text-align:left;font-size:13px}
td.gid{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-weight:600;
 white-space:nowrap}
td.gid .stmt{display:block;font-family:inherit;font-weight:400;font-size:11px;color:#6b7280;
 white-space:normal;max-width:420px}
.lvl{font-size:11px;font-weight:700;border-radius:3px;padding:1px 6px;background:#eef0f3}
.lvl.MUST{background:#e8eaf6;color:#1a237e}
td.c{text-align:center;min-width:110px}
.badge{font-size:11px;font-weight:700;border-radius:3px;padding:1px 6px}
.badge.passed{background:#e6f4ea;color:#137333}.badge.failed{background:#c5221f;color:#fff}
.badge.skipped{background:#fef3d6;color:#8a5a00}
.badge.xfailed{background:#ede7f6;color:#4527a0}.badge.xpassed{background:#c5221f;color:#fff}
.badge.notrun{background:#f1f3f4;color:#80868b}
td.c.failed,td.c.xpassed{background:#fbe3e2}td.c.skipped{background:#fffaf0}
td.c.xfailed{background:#f5f2fb}
.dev{display:block;margin-top:3px;font-size:11px;color:#4527a0;max-width:200px;
 overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
tr.differs td.gid{border-left:4px solid #e8a200}
.legend{font-size:12px;margin-top:8px}
"""


def _badge(cell: Cell) -> str:
    if cell.outcome == NOT_RUN:
        return '<span class="badge notrun">not run</span>'
    return f'<span class="badge {esc(cell.outcome)}">{cell.outcome.badge}</span>'


def _cell(cell: Cell) -> str:
    tooltip = truncate(cell.message, MAX_TOOLTIP_CHARS) if cell.message else ""
    title = f' title="{esc(tooltip)}"' if tooltip else ""
    dev = ""
    if cell.deviation is not None:
        d = cell.deviation
        dev = (
            f'<span class="dev" title="declared by the target: {esc(d.describe())}">'
            f"declared {esc(d.describe())}</span>"
        )
    cls = "" if cell.outcome == NOT_RUN else f" {esc(cell.outcome)}"
    return f'<td class="c{cls}"{title}>{_badge(cell)}{dev}</td>'


def _column_head(column: Column) -> str:
    results = column.results
    verdict = results.verdict
    counts = Counter(g.outcome for g in results.guarantees)
    shown = [f"{counts[o]} {o.badge.lower()}" for o in Outcome if counts[o]]
    label = esc(column.label)
    if column.report:
        label = f'<a href="{esc(column.report)}">{label}</a>'
    return (
        f'<th class="impl">{label}'
        f'<span class="verdict {esc(verdict.status)}" title="{esc(verdict.reason)}">'
        f"{esc(verdict.status)}</span>"
        f'<span class="counts">{esc(", ".join(shown) or "nothing ran")}</span></th>'
    )


def render_matrix(columns: Sequence[Column]) -> str:
    """The page: one column per run, one row per guarantee."""
    rows = matrix_rows(columns)
    differing = sum(r.differs for r in rows)
    body = []
    family = None
    for row in rows:
        if row.family != family:
            family = row.family
            name = FAMILIES.get(family, "")
            body.append(
                f'<tr class="fam"><th colspan="{len(columns) + 2}">{esc(family)} '
                f'<span class="muted">{esc(name)}</span></th></tr>'
            )
        cls = ' class="differs"' if row.differs else ""
        level = f'<span class="lvl {esc(row.level)}">{esc(row.level)}</span>' if row.level else ""
        body.append(
            f'<tr{cls} id="{esc(row.id)}"><td class="gid">{esc(row.id)}'
            f'<span class="stmt">{esc(row.statement)}</span></td><td>{level}</td>'
            f"{''.join(_cell(c) for c in row.cells)}</tr>"
        )
    heads = "".join(_column_head(c) for c in columns)
    summary = (
        f"{len(columns)} implementation(s), {len(rows)} guarantees; "
        f"{differing} with outcomes that differ between them (marked at the left)"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>obsconf: implementations side by side</title>"
        f"<style>{CSS}</style></head><body><main>"
        "<h1>obsconf: implementations side by side</h1>"
        f'<div class="muted">{esc(summary)}</div>'
        '<div class="legend muted">PASS passed · FAIL failed · SKIP skipped · XFAIL a declared '
        "bug failed as expected · XPASS a declared bug passed (the declaration is stale) · "
        "not run: not selected in that run. Hover a cell for its message, a verdict for its "
        "reason.</div>"
        f'<table class="m"><thead><tr><th>guarantee</th><th>level</th>{heads}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        "</main></body></html>\n"
    )


def columns_from(paths: Sequence[Path], page: Path) -> list[Column]:
    """Read each results.json (raises ResultsError); link each run's report.html if present."""
    runs = [load_results(p) for p in paths]
    columns = []
    for path, results, label in zip(paths, runs, labels_for(runs), strict=True):
        report = Path(path).parent / "report.html"
        href = None
        if report.exists():
            href = Path(os.path.relpath(report.resolve(), page.resolve().parent)).as_posix()
        columns.append(Column(label, results, href))
    return columns


def write_matrix(path: Path, results_paths: Sequence[Path]) -> Path:
    """Write the page for these results files to `path` (raises ResultsError)."""
    path = Path(path)
    columns = columns_from([Path(p) for p in results_paths], path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_matrix(columns))
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m obsconf.reports.matrix OUT.html RESULTS.json...`: write the page; exit 2 on a
    usage
    error or an unreadable results file, else 0."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or not args[0].endswith((".html", ".htm")):
        print(
            "usage: python -m obsconf.reports.matrix OUT.html RESULTS.json [RESULTS.json ...]",
            file=sys.stderr,
        )
        return 2
    try:
        page = write_matrix(Path(args[0]), [Path(a) for a in args[1:]])
    except ResultsError as error:
        print(f"obsconf.reports.matrix: {error}", file=sys.stderr)
        return 2
    print(f"written: {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
