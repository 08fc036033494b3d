"""Evidence in the HTML report: what a check looked at, drawn by the class of the evidence
(`obsconf.conformance.evidence`).

Every piece shows its kind and check; then a comparison its query and expected beside seen, a
log query the query in the store's language, a trace check its trace link, the gap in one
sentence and the waterfall (`obsconf.reports.waterfall`), LOAD's reconciliation and freshness
their tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import singledispatch
from typing import Any

from obsconf.conformance.evidence import (
    CompareEvidence,
    Evidence,
    FreshnessEvidence,
    LogQueryEvidence,
    ReconciliationEvidence,
    TraceEvidence,
)
from obsconf.reports.markup import esc, trace_link, truncate
from obsconf.reports.waterfall import render_waterfall

MAX_VALUE_CHARS = 1200


def pretty(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A readable, truncated rendering of an evidence value (strings as they are)."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return truncate(text, limit)


def render_evidence(
    evidence: Evidence, grafana_url: str | None, draw: bool = True, seen_in: str = ""
) -> str:
    """One piece of evidence: its kind and check, then what its class shows (a trace check
    draws its waterfall only when `draw`, else points to the guarantee `seen_in` that does)."""
    return (
        f'<div class="ev"><div class="check"><span class="kind">{esc(evidence.kind)}'
        f"</span> {esc(evidence.check)}</div>"
        f"{render_details(evidence, grafana_url, draw, seen_in)}</div>"
    )


@singledispatch
def render_details(evidence: Evidence, grafana_url: str | None, draw: bool, seen_in: str) -> str:
    """What a piece of evidence shows below its check, by its class."""
    raise TypeError(f"the report has no rendering for {type(evidence).__name__}")


@render_details.register
def _comparison(
    evidence: CompareEvidence, grafana_url: str | None, draw: bool, seen_in: str
) -> str:
    query = _query("query", evidence.query) if evidence.query else ""
    expected, seen = evidence.expected, evidence.seen
    cls = "same" if expected == seen else "differ"
    return (
        f'{query}<div class="cmp {cls}"><div><b>expected</b><pre>{esc(pretty(expected))}</pre>'
        f"</div><div><b>seen</b><pre>{esc(pretty(seen))}</pre></div></div>"
    )


@render_details.register
def _log_query(
    evidence: LogQueryEvidence, grafana_url: str | None, draw: bool, seen_in: str
) -> str:
    return _query(evidence.language or "query", evidence.query) if evidence.query else ""


def _query(label: str, query: str) -> str:
    return f'<div class="kv"><b>{esc(label)}</b><pre class="query">{esc(pretty(query))}</pre></div>'


@render_details.register
def _trace(evidence: TraceEvidence, grafana_url: str | None, draw: bool, seen_in: str) -> str:
    """The trace link, the gap sentence and the waterfall (or a pointer to the guarantee where
    the same trace is drawn)."""
    spans = evidence.spans
    traces = {s.trace_id for s in spans}
    parts = [
        f'<div class="kv"><b>trace</b> {trace_link(evidence.trace_id, grafana_url)}'
        f" · {len(spans)} spans in {len(traces)} trace{'s' if len(traces) != 1 else ''}</div>"
    ]
    if evidence.request:
        parts.append(f'<div class="kv"><b>request</b> <code>{esc(evidence.request)}</code></div>')
    sentence = evidence.gap_sentence
    if sentence:
        parts.append(f'<p class="gapline">⚠ {esc(sentence)}</p>')
    else:
        parts.append('<p class="okline">This check found no gap in the flow\'s traces.</p>')
    if draw:
        parts.append(render_waterfall(spans, evidence.trace_id, evidence.flagged, grafana_url))
    elif seen_in:
        parts.append(
            f'<p class="muted">Same trace as drawn under <a href="#g-{esc(seen_in)}">'
            f"{esc(seen_in)}</a>.</p>"
        )
    return "".join(parts)


@render_details.register
def _reconciliation(
    evidence: ReconciliationEvidence, grafana_url: str | None, draw: bool, seen_in: str
) -> str:
    rows = ((r.stage, r.flows, r.example) for r in evidence.rows)
    return render_table(("stage", "flows", "example"), rows)


@render_details.register
def _freshness(
    evidence: FreshnessEvidence, grafana_url: str | None, draw: bool, seen_in: str
) -> str:
    rows = ((signal, f.p50, f.p99, f.n, f.resolution_s) for signal, f in evidence.freshness.items())
    table = render_table(("signal", "p50", "p99", "n", "resolution_s"), rows)
    return f"{table}<p>{esc(pretty(evidence.expected))}</p>"


def render_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A small table of evidence rows (LOAD's reconciliation, freshness percentiles)."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else esc(str(value))

    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="counts"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
