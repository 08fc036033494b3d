"""The HTML conformance report: one self-contained file (inline CSS and SVG, no network).

`render_report(results)` takes the `RunResults` of a run (`conformance/results.py`: target,
faults, duration, the folded guarantees and the target's declared deviations) and returns the
page: the run's verdict (`obsconf.conformance.results.verdict`, the one that also sets the exit
status) and a family × level summary, the declared deviations, then one row per guarantee,
failures first and expanded, each with its evidence (`obsconf.reports.evidence_html`) — the
query run, expected versus seen, and for trace evidence a waterfall of the flow's spans
(`obsconf.reports.waterfall`) with the gap drawn in red and explained in one sentence above it.
The style sheet is report.css, beside this module.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from importlib.resources import files
from pathlib import Path

from obsconf.conformance.catalog import FAMILIES, Level
from obsconf.conformance.evidence import TraceEvidence
from obsconf.conformance.results import GuaranteeResult, Outcome, RunResults
from obsconf.reports.evidence_html import render_evidence
from obsconf.reports.markup import esc, explore_url, truncate, truncate_label
from obsconf.reports.text import visible

# explore_url is still imported from here (the Grafana data source provisioning names it here).
__all__ = ["explore_url", "render_report", "write_report"]

# The order of a family's guarantees: failures first, passes last.
OUTCOME_ORDER = {
    Outcome.FAILED: 0,
    Outcome.XPASSED: 0,
    Outcome.INCOMPLETE: 0,
    Outcome.SKIPPED: 1,
    Outcome.XFAILED: 2,
    Outcome.PASSED: 3,
}
MAX_MESSAGE_CHARS = 2500


def _summary_table(results: RunResults) -> str:
    guarantees = results.guarantees
    counts: Counter[tuple[str, str, str]] = Counter(
        (g.family, g.level, g.outcome) for g in guarantees
    )
    # Expected failures and unexpected passes get columns only when a run has them.
    present = {g.outcome for g in guarantees}
    outcomes = tuple(o for o in Outcome if not o.occasional or o in present)
    head = "".join(f'<th colspan="{len(outcomes)}">{lv}</th>' for lv in Level)
    sub = "".join(f"<th>{o}</th>" for _ in Level for o in outcomes)
    body = []
    for family in [*results.families, "total"]:
        cells = []
        for level in Level:
            for outcome in outcomes:
                n = sum(
                    v
                    for (f, lv, o), v in counts.items()
                    if (family == "total" or f == family) and lv == level and o == outcome
                )
                cls = f' class="{outcome}"' if n and outcome != Outcome.PASSED else ""
                cells.append(f"<td{cls}>{n if n else '·'}</td>")
        name = FAMILIES.get(family, "")
        label = f"{esc(family)} <span class='muted'>{esc(name)}</span>" if name else esc(family)
        row_cls = ' class="total"' if family == "total" else ""
        body.append(f"<tr{row_cls}><th>{label}</th>{''.join(cells)}</tr>")
    return (
        f'<table class="counts"><thead><tr><th rowspan="2">family</th>{head}</tr>'
        f"<tr>{sub}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _headline(guarantee: GuaranteeResult) -> str:
    """The first line worth showing for a failure: the trace gap, else the message."""
    if guarantee.outcome == Outcome.XPASSED:
        return guarantee.message
    for evidence in guarantee.evidence:
        if isinstance(evidence, TraceEvidence) and evidence.gap_sentence:
            return evidence.gap_sentence
    message = guarantee.message.removeprefix("AssertionError: ")
    return message.splitlines()[0] if message else ""


def _deviation_tag(guarantee: GuaranteeResult) -> str:
    if guarantee.deviation is None:
        return ""
    d = guarantee.deviation
    return (
        f'<span class="dev {esc(d.kind)}" title="declared by the target">declared '
        f"{esc(d.kind)}{': ' + esc(truncate_label(d.reason, 80)) if d.reason else ''}</span>"
    )


def _examined_tag(guarantee: GuaranteeResult) -> str:
    """The sweep's count in the row's summary line: "every" is visibly every."""
    if not guarantee.examined:
        return ""
    kind, count = next(iter(guarantee.examined.items()))
    return f' <span class="dev">swept {count:,} {esc(kind)}</span>'


def _guarantee_row(
    guarantee: GuaranteeResult, grafana_url: str | None, drawn: dict[str, str]
) -> str:
    gid, outcome, level = guarantee.id, guarantee.outcome, guarantee.level
    opened = " open" if guarantee.failing or outcome == Outcome.INCOMPLETE else ""
    body: list[str] = []
    if guarantee.deviation is not None:
        d = guarantee.deviation
        meaning = {
            Outcome.XFAILED: "it ran and failed, as declared: an expected failure, not counted.",
            Outcome.XPASSED: "it ran and passed: the declaration is stale and fails the run.",
            Outcome.SKIPPED: "it was not run.",
        }.get(outcome, "")
        body.append(
            f'<p class="devline">The target declares <b>{esc(d.kind)}</b>'
            f"{': ' + esc(d.reason) if d.reason else ''} — {esc(meaning)}</p>"
        )
    if outcome != Outcome.PASSED and guarantee.message:
        message = f'<pre class="msg">{esc(truncate(guarantee.message, MAX_MESSAGE_CHARS))}</pre>'
        if any(isinstance(e, TraceEvidence) for e in guarantee.evidence):
            # The waterfall below shows what the message's text tree shows.
            message = f"<details><summary>assertion message</summary>{message}</details>"
        body.append(message)
    # A trace drawn under an earlier guarantee is pointed to, not drawn again (but a failure
    # draws its own).
    once = outcome not in (Outcome.FAILED, Outcome.XFAILED)
    for evidence in guarantee.evidence:
        draw, seen_in = True, ""
        if isinstance(evidence, TraceEvidence) and once:
            key = evidence.trace_id
            if key in drawn:
                draw, seen_in = False, drawn[key]
            else:
                drawn[key] = gid
        body.append(render_evidence(evidence, grafana_url, draw, seen_in))
    if not guarantee.evidence and outcome == Outcome.PASSED:
        body.append('<p class="muted">No evidence recorded.</p>')
    if guarantee.fed_by:
        body.append(
            '<div class="tests">fed by: '
            + ", ".join(f"<code>{esc(name)}</code>" for name in guarantee.fed_by)
            + "</div>"
        )
    if guarantee.examined:
        body.append(
            '<div class="tests">whole-run sweep examined: '
            + ", ".join(f"{count:,} {esc(kind)}" for kind, count in guarantee.examined.items())
            + "</div>"
        )
    tests = guarantee.tests
    if tests:
        body.append(
            '<div class="tests">tests: '
            + ", ".join(f"<code>{esc(t)}</code>" for t in tests)
            + "</div>"
        )
    return (
        f'<details class="g {esc(outcome)}" id="g-{esc(gid)}"{opened}><summary>'
        f'<span class="badge {esc(outcome)}">{esc(outcome.badge)}</span>'
        f'<span class="lvl {esc(level)}">{esc(level)}</span>'
        f'<span class="gid">{esc(gid)}</span>'
        f'<span class="stmt">{esc(guarantee.statement)}</span>{_examined_tag(guarantee)}'
        f"{_deviation_tag(guarantee)}</summary>"
        f'<div class="body">{"".join(body)}</div></details>'
    )


JS = "function setAll(o){document.querySelectorAll('details.g').forEach(d=>{d.open=o;});}"


@cache
def _css() -> str:
    return files("obsconf.reports").joinpath("report.css").read_text(encoding="utf-8")


def _deviations_section(results: RunResults) -> str:
    """Every deviation the target declares, with what became of it in this run."""
    if not results.deviations:
        return ""
    rows = []
    for gid, d in results.deviations.items():
        g = results.guarantee(gid)
        seen = g.outcome.badge if g else "not selected"
        cell = f'<a href="#g-{esc(gid)}">{esc(gid)}</a>' if g else esc(gid)
        cls = f' class="{esc(g.outcome)}"' if g else ""
        rows.append(
            f"<tr><td>{cell}</td><td>{esc(d.kind)}</td><td>{esc(d.reason)}</td>"
            f"<td{cls}>{esc(seen)}</td></tr>"
        )
    return (
        '<section class="devs" id="deviations"><b>Declared deviations</b> '
        '<span class="muted">(a declared bug runs and may fail; if it passes, the run fails; '
        "missing_feature and not_applicable are not run)</span>"
        '<table class="counts"><thead><tr><th>guarantee</th><th>declared</th><th>reason</th>'
        f"<th>this run</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def render_report(results: RunResults, *, grafana_url: str | None = None) -> str:
    """The whole report as one self-contained HTML document.

    `results` is the run's `RunResults`. With `grafana_url`, every trace id links to Grafana
    Explore (see `explore_url` for the URL format); nothing else points outside.
    """
    guarantees = list(results.guarantees)
    outcome = results.verdict
    word, why = outcome.status, outcome.reason
    target = results.target or "(unknown target)"
    faults = results.faults
    duration = results.duration_s
    took = f"{duration:.1f} s" if isinstance(duration, int | float) else "?"
    failed = [g for g in guarantees if g.failing]
    failed.sort(key=lambda g: g.level != Level.MUST)
    meta = [
        f"<div><b>target</b> {esc(target)}</div>",
        f"<div><b>faults</b> {esc(', '.join(faults)) if faults else 'none'}</div>",
        f"<div><b>duration</b> {esc(took)}</div>",
        f"<div><b>guarantees</b> {len(guarantees)}: {esc(results.tally)}</div>",
    ]
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(word)} · obsconf conformance · {esc(target)}</title>",
        f"<style>\n{_css()}</style></head><body><main>",
        '<header class="top"><div class="meta">',
        f"<h1>obsconf conformance report — {esc(target)}</h1>",
        *meta,
        f'<div style="margin-top:8px">{_summary_table(results)}</div></div>',
        f'<div class="verdict {esc(word)}" id="verdict"><b>{esc(word)}</b>'
        f"<span>{esc(why)}</span><span>exit status {outcome.exit_code}</span></div></header>",
    ]
    if failed:
        items = "".join(
            f'<li><a href="#g-{esc(g.id)}">{esc(g.id)}</a> '
            f'<span class="lvl {esc(g.level)}">{esc(g.level)}</span> '
            f"{'<b>XPASS</b> ' if g.outcome == Outcome.XPASSED else ''}"
            f"{esc(truncate_label(_headline(g), 260))}</li>"
            for g in failed
        )
        page.append(f'<section class="glance"><b>Failures</b><ul>{items}</ul></section>')
    page.append(_deviations_section(results))
    page.append(
        '<div class="tools"><button onclick="setAll(true)">expand all</button>'
        '<button onclick="setAll(false)">collapse all</button></div>'
    )
    drawn: dict[str, str] = {}
    families = results.families
    # Families with a failure first, so the evidence is near the top; catalog order otherwise.
    families.sort(key=lambda f: not any(g.failing and g.family == f for g in guarantees))
    for family in families:
        members = [g for g in guarantees if g.family == family]
        members.sort(key=lambda g: OUTCOME_ORDER[g.outcome])
        n_failed = sum(g.failing for g in members)
        status = f" · <span class='failtxt'>{n_failed} failed</span>" if n_failed else ""
        page.append(
            f'<section class="family" id="f-{esc(family)}"><h2>{esc(family)} — '
            f"{esc(FAMILIES.get(family, family))} <span class='muted'>({len(members)}"
            f"{status})</span></h2>"
        )
        page.extend(_guarantee_row(g, grafana_url, drawn) for g in members)
        page.append("</section>")
    page.append(f"</main><script>{JS}</script></body></html>")
    return "\n".join(page)


def write_report(results: RunResults, path: Path, grafana_url: str | None = None) -> Path:
    """Render the report and write it to `path` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(visible(render_report(results, grafana_url=grafana_url)), encoding="utf-8")
    return path
