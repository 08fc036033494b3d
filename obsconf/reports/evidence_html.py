"""Evidence in the HTML report: what a check looked at, drawn by the kind of evidence.

A comparison shows its query and expected beside seen; a trace check its trace link, the gap
in one sentence and the waterfall (`obsconf.reports.waterfall`); LOAD's reconciliation and
freshness their tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

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


QUERY_LABELS = {"logsql": "LogsQL", "compare": "query", "logs": "query", "nats": "query"}


def gap_sentence(evidence: Mapping[str, Any]) -> str:
    """The one-sentence explanation of a trace gap: `gap`, else the first finding's message
    and likely cause."""
    if evidence.get("gap"):
        return str(evidence["gap"])
    findings = evidence.get("findings") or []
    if findings:
        first = findings[0]
        message = str(first.get("message", "")).rstrip(".")
        cause = first.get("likely_cause")
        return f"{message}; likely cause: {cause}." if cause else f"{message}."
    return ""


def render_trace_evidence(
    evidence: Mapping[str, Any], grafana_url: str | None, draw: bool = True, seen_in: str = ""
) -> str:
    """A trace check: the trace link, the gap sentence and the waterfall (or a pointer to the
    guarantee where the same trace is drawn, when `draw` is false)."""
    spans = evidence.get("spans") or []
    findings = evidence.get("findings") or []
    trace_id = str(evidence.get("trace_id", ""))
    traces = {s.get("trace_id") for s in spans}
    parts = [
        f'<div class="kv"><b>trace</b> {trace_link(trace_id, grafana_url)}'
        f" · {len(spans)} spans in {len(traces)} trace{'s' if len(traces) != 1 else ''}</div>"
    ]
    if evidence.get("request"):
        parts.append(
            f'<div class="kv"><b>request</b> <code>{esc(evidence["request"])}</code></div>'
        )
    sentence = gap_sentence(evidence)
    if sentence:
        parts.append(f'<p class="gapline">⚠ {esc(sentence)}</p>')
    else:
        parts.append('<p class="okline">This check found no gap in the flow\'s traces.</p>')
    if draw:
        flagged = {str(f.get("span_id")) for f in findings if f.get("span_id")}
        parts.append(render_waterfall(spans, trace_id, flagged, grafana_url))
    elif seen_in:
        parts.append(
            f'<p class="muted">Same trace as drawn under <a href="#g-{esc(seen_in)}">'
            f"{esc(seen_in)}</a>.</p>"
        )
    return "".join(parts)


def render_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A small table of evidence rows (LOAD's reconciliation, freshness percentiles)."""

    def cell(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else esc(str(value))

    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f'<table class="counts"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_evidence(
    evidence: Mapping[str, Any], grafana_url: str | None, draw: bool = True, seen_in: str = ""
) -> str:
    """One piece of evidence: its check, the query run and expected versus seen."""
    kind = str(evidence.get("kind", ""))
    parts = [
        f'<div class="ev"><div class="check"><span class="kind">{esc(kind or "evidence")}'
        f"</span> {esc(evidence.get('check', ''))}</div>"
    ]
    if kind == "trace":
        parts.append(render_trace_evidence(evidence, grafana_url, draw, seen_in))
    elif kind == "reconciliation":
        parts.append(render_rows(evidence.get("rows") or [], ("stage", "flows", "example")))
    elif kind == "freshness":
        rows = [{"signal": k, **v} for k, v in (evidence.get("freshness") or {}).items()]
        parts.append(render_rows(rows, ("signal", "p50", "p99", "n", "resolution_s")))
        parts.append(f"<p>{esc(pretty(evidence.get('expected')))}</p>")
    else:
        if evidence.get("query"):
            label = evidence.get("language") or QUERY_LABELS.get(kind, "query")
            parts.append(
                f'<div class="kv"><b>{esc(label)}</b><pre class="query">'
                f"{esc(pretty(evidence['query']))}</pre></div>"
            )
        if "expected" in evidence or "seen" in evidence:
            expected, seen = evidence.get("expected"), evidence.get("seen")
            cls = "same" if expected == seen else "differ"
            parts.append(
                f'<div class="cmp {cls}"><div><b>expected</b><pre>{esc(pretty(expected))}</pre>'
                f"</div><div><b>seen</b><pre>{esc(pretty(seen))}</pre></div></div>"
            )
    parts.append("</div>")
    return "".join(parts)
