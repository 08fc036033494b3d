"""The HTML conformance report: one self-contained file (inline CSS and SVG, no network).

`render_report(results)` takes the `RunResults` of a run (`conformance/results.py`: target,
faults, duration, the folded guarantees and the target's declared deviations) and returns the
page: the run's verdict (`obsconf.conformance.results.verdict`, the one that also sets the exit
status) and a family × level summary, the declared deviations, then one row per guarantee,
failures first and expanded, each with its evidence — the query run, expected versus seen,
and for trace evidence a waterfall of the flow's spans with the gap drawn in red and explained
in one sentence above it.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from obsconf.conformance.catalog import FAMILIES, Level
from obsconf.conformance.results import GuaranteeResult, Outcome, RunResults
from obsconf.conformance.traces.render import COLLAPSE_OVER

# The order of a family's guarantees: failures first, passes last.
OUTCOME_ORDER = {
    Outcome.FAILED: 0,
    Outcome.XPASSED: 0,
    Outcome.SKIPPED: 1,
    Outcome.XFAILED: 2,
    Outcome.PASSED: 3,
}
MAX_VALUE_CHARS = 1200
MAX_MESSAGE_CHARS = 2500
MAX_ROWS = 300
# Service colours: distinct, none of them red (red marks the gap).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
)
GAP_RED = "#d62728"

# Waterfall geometry (px).
LABEL_W = 430
CHART_W = 640
DUR_W = 90
ROW_H = 20
AXIS_H = 24
CHAR_W = 7.0  # 12px monospace advance, for truncating labels
INDENT_W = 12
MAX_INDENT_DEPTH = 12


def esc(value: object) -> str:
    """HTML-escape anything (quotes included, so it is safe in attributes too)."""
    return html.escape(str(value), quote=True)


def explore_url(grafana_url: str, trace_id: str, datasource: str = "traces") -> str:
    """A Grafana Explore link that opens `trace_id` in the trace data source `datasource`.

    Format (Grafana ≥ 10 `panes` URLs):
    `{grafana_url}/explore?schemaVersion=1&orgId=1&panes=<url-encoded JSON>` where the JSON is
    `{"trace": {"datasource": DS, "queries": [{"refId": "A", "datasource": {"uid": DS},
    "query": TRACE_ID}], "range": {"from": "now-6h", "to": "now"}}}` — a bare trace id as the
    query is a trace-id lookup in the Tempo and Jaeger data sources.
    """
    pane = {
        "trace": {
            "datasource": datasource,
            "queries": [{"refId": "A", "datasource": {"uid": datasource}, "query": trace_id}],
            "range": {"from": "now-6h", "to": "now"},
        }
    }
    panes = quote(json.dumps(pane, separators=(",", ":")), safe="")
    return f"{grafana_url.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={panes}"


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with a `… N more chars` note."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… {len(text) - limit} more chars"


def pretty(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A readable, truncated rendering of an evidence value (strings as they are)."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return truncate(text, limit)


# --- waterfall ------------------------------------------------------------------------------


@dataclass
class Row:
    """One waterfall row: a trace header, a span, a collapsed group or a note."""

    kind: str  # "header" | "span" | "more" | "note"
    text: str = ""
    depth: int = 0
    span: Mapping[str, Any] | None = None
    service: str = ""
    start_ns: int = 0
    end_ns: int = 0
    count: int = 0
    trace_id: str = ""
    flagged: bool = False


def _num(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _start(span: Mapping[str, Any]) -> int:
    return _num(span.get("start_ns"))


def _end(span: Mapping[str, Any]) -> int:
    return max(_num(span.get("end_ns")), _start(span))


def _label(span: Mapping[str, Any]) -> str:
    return f"{span.get('service', '?')}: {span.get('name', '?')} [{span.get('kind', '?')}]"


def _subtree_size(span_id: str, children: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """How many spans hang below `span_id` (iteratively; guards against cycles)."""
    seen: set[str] = set()
    stack = [span_id]
    while stack:
        for kid in children.get(stack.pop(), ()):
            kid_id = str(kid.get("span_id", ""))
            if kid_id not in seen:
                seen.add(kid_id)
                stack.append(kid_id)
    return len(seen)


def _visible_children(
    siblings: Sequence[Mapping[str, Any]],
    flagged: set[str],
    children: Mapping[str, Sequence[Mapping[str, Any]]],
    depth: int,
) -> list[Mapping[str, Any] | Row]:
    """Siblings to draw: a same service+name group of more than COLLAPSE_OVER spans shows its
    first span and one `… N more` row spanning the rest (flagged spans always shown), as the
    text tree in `obsconf.conformance.traces.render` does."""
    sizes = Counter((s.get("service"), s.get("name")) for s in siblings)
    groups: dict[tuple[Any, Any], Row] = {}
    items: list[Mapping[str, Any] | Row] = []
    for span in siblings:
        key = (span.get("service"), span.get("name"))
        if sizes[key] <= COLLAPSE_OVER or str(span.get("span_id")) in flagged:
            items.append(span)
            continue
        if key not in groups:
            groups[key] = Row(
                kind="more",
                depth=depth,
                service=str(span.get("service", "")),
                text=f"{span.get('service', '?')}: {span.get('name', '?')}",
                start_ns=_start(span),
                end_ns=_end(span),
                trace_id=str(span.get("trace_id", "")),
            )
            items.append(span)  # the group's first span stays visible
            continue
        group = groups[key]
        if group.count == 0:
            items.append(group)
        group.count += 1 + _subtree_size(str(span.get("span_id", "")), children)
        group.start_ns = min(group.start_ns, _start(span))
        group.end_ns = max(group.end_ns, _end(span))
    return items


def waterfall_rows(
    spans: Sequence[Mapping[str, Any]], primary_trace: str, flagged: set[str]
) -> list[Row]:
    """Rows of the waterfall: the primary trace first, then the other traces of the flow by
    start time, each under a header row, spans depth-first under their parents."""
    by_trace: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for span in spans:
        by_trace[str(span.get("trace_id", ""))].append(span)
    order = sorted(by_trace, key=lambda t: (t != primary_trace, min(map(_start, by_trace[t]))))
    rows: list[Row] = []
    for trace_id in order:
        trace_spans = sorted(by_trace[trace_id], key=_start)
        ids = {str(s.get("span_id", "")) for s in trace_spans}
        children: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        roots: list[Mapping[str, Any]] = []
        for span in trace_spans:
            parent = str(span.get("parent_span_id") or "")
            if parent and parent in ids and parent != span.get("span_id"):
                children[parent].append(span)
            else:
                roots.append(span)
        header = Row(kind="header", trace_id=trace_id, count=len(trace_spans))
        if trace_id == primary_trace:
            header.text = f"trace {trace_id} · the flow's trace, {len(trace_spans)} spans"
        else:
            first = roots[0] if roots else trace_spans[0]
            header.text = (
                f"trace {trace_id} · SEPARATE trace, {len(trace_spans)} spans · "
                f"its root {_label(first)} has no parent"
            )
        rows.append(header)
        visited: set[str] = set()
        stack: list[Mapping[str, Any] | Row] = list(
            reversed(_visible_children(roots, flagged, children, 0))
        )
        depths = [0] * len(stack)
        while stack:
            item, depth = stack.pop(), depths.pop()
            if isinstance(item, Row):
                rows.append(item)
                continue
            span_id = str(item.get("span_id", ""))
            if span_id in visited:
                continue
            visited.add(span_id)
            rows.append(
                Row(
                    kind="span",
                    depth=depth,
                    span=item,
                    service=str(item.get("service", "")),
                    start_ns=_start(item),
                    end_ns=_end(item),
                    trace_id=trace_id,
                    flagged=span_id in flagged,
                )
            )
            kids = _visible_children(children.get(span_id, ()), flagged, children, depth + 1)
            stack.extend(reversed(kids))
            depths.extend([depth + 1] * len(kids))
    return _cap(rows)


def _cap(rows: list[Row]) -> list[Row]:
    """At most MAX_ROWS rows plus a note; flagged spans past the cap are still drawn."""
    if len(rows) <= MAX_ROWS:
        return rows
    kept = rows[:MAX_ROWS]
    late = [r for r in rows[MAX_ROWS:] if r.flagged]
    hidden = len(rows) - MAX_ROWS - len(late)
    spans_hidden = sum(1 if r.kind == "span" else r.count for r in rows[MAX_ROWS:] if not r.flagged)
    note = Row(
        kind="note",
        text=f"… waterfall capped at {MAX_ROWS} rows: {hidden} more rows "
        f"({spans_hidden} spans) not drawn",
    )
    return [*kept, note, *late]


def _nice_step(total_ms: float, ticks: int = 6) -> float:
    raw = max(total_ms / ticks, 1e-6)
    base = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * base:
            return mult * base
    return 10 * base


def _fmt_ms(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 10:
        return f"{ms:.0f} ms"
    if ms >= 1:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def service_colours(spans: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """A colour per service, in order of first start."""
    colours: dict[str, str] = {}
    for span in sorted(spans, key=_start):
        service = str(span.get("service", ""))
        if service not in colours:
            colours[service] = PALETTE[len(colours) % len(PALETTE)]
    return colours


def render_waterfall(
    spans: Sequence[Mapping[str, Any]],
    primary_trace: str,
    flagged: set[str],
    grafana_url: str | None = None,
) -> str:
    """The legend and an inline SVG waterfall of `spans` (x = offset from the earliest span,
    width = duration, colour = service, indentation = depth); `flagged` spans in red."""
    if not spans:
        return '<p class="muted">No spans were recorded for this trace.</p>'
    rows = waterfall_rows(spans, primary_trace, flagged)
    colours = service_colours(spans)
    t0 = min(map(_start, spans))
    t1 = max(map(_end, spans))
    total_ms = max((t1 - t0) / 1e6, 1e-3)
    step = _nice_step(total_ms)
    scale = CHART_W / total_ms
    width = LABEL_W + CHART_W + DUR_W
    height = AXIS_H + ROW_H * len(rows) + 4

    def x_of(ns: int) -> float:
        return LABEL_W + (ns - t0) / 1e6 * scale

    out: list[str] = [
        f'<svg class="waterfall" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="trace waterfall, {len(spans)} spans">'
    ]
    # Axis and grid.
    tick = 0.0
    while tick <= total_ms + 1e-9:
        x = LABEL_W + tick * scale
        anchor = "end" if tick * scale > CHART_W - 20 else "start" if tick == 0 else "middle"
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" y2="{height}"/>'
            f'<text class="tick" x="{x:.1f}" y="{AXIS_H - 8}" text-anchor="{anchor}">'
            f"{esc(_fmt_ms(tick) if tick else '0')}</text>"
        )
        tick += step
    out.append(f'<text class="tick" x="4" y="{AXIS_H - 8}">span (service: name [KIND])</text>')
    out.append(
        f'<text class="tick" x="{width - 4}" y="{AXIS_H - 8}" text-anchor="end">duration</text>'
    )
    for i, row in enumerate(rows):
        y = AXIS_H + i * ROW_H
        mid = y + ROW_H / 2 + 4
        indent = 6 + min(row.depth, MAX_INDENT_DEPTH) * INDENT_W
        if row.kind == "header":
            separate = row.trace_id != primary_trace
            cls = "hdr sep" if separate else "hdr"
            text = esc(truncate_label(row.text, (width - 12) / CHAR_W))
            if grafana_url and row.trace_id:
                href = esc(explore_url(grafana_url, row.trace_id))
                text = f'<a href="{href}" target="_blank">{text}</a>'
            out.append(
                f'<rect class="{cls}" x="0" y="{y + 1}" width="{width}" height="{ROW_H - 2}"/>'
                f'<text class="hdrtext" x="6" y="{mid}">{text}</text>'
            )
            continue
        if row.kind == "note":
            out.append(f'<text class="note" x="6" y="{mid}">{esc(row.text)}</text>')
            continue
        x = x_of(row.start_ns)
        bar_w = max((row.end_ns - row.start_ns) / 1e6 * scale, 1.5)
        dur = _fmt_ms((row.end_ns - row.start_ns) / 1e6)
        if row.kind == "more":
            label = f"… {row.count} more {row.text}"
            out.append(
                f'<g class="more"><title>{esc(label)}</title>'
                f'<text class="lbl more" x="{indent}" y="{mid}">'
                f"{esc(truncate_label(label, (LABEL_W - indent - 8) / CHAR_W))}</text>"
                f'<rect x="{x:.1f}" y="{y + 5}" width="{bar_w:.1f}" height="{ROW_H - 10}" '
                f'fill="{colours.get(row.service, "#999")}" fill-opacity="0.35" '
                f'stroke="{colours.get(row.service, "#999")}" stroke-dasharray="3 2"/>'
                f'<text class="dur" x="{width - 4}" y="{mid}" text-anchor="end">'
                f"{esc(dur)}</text></g>"
            )
            continue
        span = row.span or {}
        label = _label(span)
        error = span.get("status") == "ERROR"
        marker = "▶ " if row.flagged else ""
        tip = (
            f"{label}\nspan {span.get('span_id', '')} · parent "
            f"{span.get('parent_span_id') or '(none)'}\ntrace {row.trace_id}\n"
            f"start +{_fmt_ms((row.start_ns - t0) / 1e6)} · {dur} · status "
            f"{span.get('status', '')} {span.get('status_message', '')}"
        ).rstrip()
        fill = GAP_RED if row.flagged else colours.get(row.service, "#999")
        cls = "span gap" if row.flagged else "span"
        stripe = (
            f'<rect class="gaprow" x="0" y="{y}" width="{width}" height="{ROW_H}"/>'
            if row.flagged
            else ""
        )
        stroke = ' stroke="#600" stroke-width="1.5"' if row.flagged or error else ""
        out.append(
            f'<g class="{cls}"><title>{esc(tip)}</title>{stripe}'
            f'<text class="lbl" x="{indent}" y="{mid}">'
            f"{esc(truncate_label(marker + label, (LABEL_W - indent - 8) / CHAR_W))}</text>"
            f'<rect x="{x:.1f}" y="{y + 4}" width="{bar_w:.1f}" height="{ROW_H - 8}" '
            f'rx="2" fill="{fill}"{stroke}/>'
            f'<text class="dur" x="{width - 4}" y="{mid}" text-anchor="end">'
            f"{esc(dur + (' ERROR' if error else ''))}</text></g>"
        )
    out.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{c}"></i>{esc(s)}</span>'
        for s, c in colours.items()
    )
    legend += (
        f'<span class="key"><i style="background:{GAP_RED}"></i>▶ span named in the finding</span>'
    )
    if any(r.kind == "more" for r in rows):
        legend += '<span class="key"><i class="hatch"></i>collapsed group</span>'
    return f'<div class="legend">{legend}</div><div class="wf">{"".join(out)}</div>'


def truncate_label(text: str, chars: float) -> str:
    """`text` cut to `chars` characters with an ellipsis."""
    limit = max(int(chars), 4)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- evidence -------------------------------------------------------------------------------

QUERY_LABELS = {"logsql": "LogsQL", "compare": "query", "logs": "query", "nats": "query"}


def _trace_link(trace_id: str, grafana_url: str | None) -> str:
    if grafana_url and trace_id:
        href = esc(explore_url(grafana_url, trace_id))
        return f'<a href="{href}" target="_blank">{esc(trace_id)}</a>'
    return f"<code>{esc(trace_id)}</code>"


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
        f'<div class="kv"><b>trace</b> {_trace_link(trace_id, grafana_url)}'
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


# --- page -----------------------------------------------------------------------------------


def _summary_table(results: RunResults) -> str:
    guarantees = results.guarantees
    counts: Counter[tuple[str, str, str]] = Counter(
        (g.family, g.level, g.outcome) for g in guarantees
    )
    # Expected failures and unexpected passes get columns only when a run has them.
    present = {g.outcome for g in guarantees}
    outcomes = tuple(o for o in Outcome if not o.of_a_declared_bug or o in present)
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
        if evidence.get("kind") == "trace" and gap_sentence(evidence):
            return gap_sentence(evidence)
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
    opened = " open" if guarantee.failing else ""
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
        if any(e.get("kind") == "trace" for e in guarantee.evidence):
            # The waterfall below shows what the message's text tree shows.
            message = f"<details><summary>assertion message</summary>{message}</details>"
        body.append(message)
    for evidence in guarantee.evidence:
        draw, seen_in = True, ""
        if evidence.get("kind") == "trace" and outcome not in (Outcome.FAILED, Outcome.XFAILED):
            key = str(evidence.get("trace_id", ""))
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


CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 margin:0;color:#1d2330;background:#f4f5f7}
main{max-width:1260px;margin:0 auto;padding:18px 20px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:26px 0 8px}
code,pre,.gid,svg text{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
pre{white-space:pre-wrap;word-break:break-word;margin:4px 0;padding:6px 8px;
 background:#f7f7f9;border:1px solid #e2e4e9;border-radius:4px;font-size:12px}
.muted{color:#6b7280}
header.top{display:flex;gap:24px;align-items:stretch;flex-wrap:wrap;background:#fff;
 border:1px solid #dfe2e7;border-radius:8px;padding:16px}
.meta{flex:1 1 320px}.meta div{margin:2px 0}
.verdict{flex:0 0 230px;border-radius:8px;color:#fff;display:flex;flex-direction:column;
 justify-content:center;align-items:center;text-align:center;padding:10px}
.verdict b{font-size:44px;letter-spacing:2px;line-height:1.1}.verdict span{font-size:13px}
.verdict.PASS{background:#1e8e3e}.verdict.FAIL{background:#c5221f}
.verdict.INCOMPLETE{background:#b06000}
table.counts{border-collapse:collapse;font-size:13px;background:#fff}
table.counts th,table.counts td{border:1px solid #dfe2e7;padding:3px 9px;text-align:center}
table.counts tbody th{text-align:left}table.counts tr.total{font-weight:600;background:#f7f7f9}
td.failed{background:#fbe3e2;color:#a50e0e;font-weight:700}td.skipped{background:#fef3d6}
.glance{background:#fff;border:1px solid #f1b9b7;border-left:5px solid #c5221f;
 border-radius:6px;padding:8px 14px;margin-top:14px}
.glance ul{margin:4px 0;padding-left:18px}.glance li{margin:3px 0}
.glance a{font-weight:600;color:#a50e0e;text-decoration:none;font-family:ui-monospace,monospace}
details.g{background:#fff;border:1px solid #dfe2e7;border-radius:6px;margin:5px 0}
details.g.failed{border-color:#eaa3a0;border-left:5px solid #c5221f}
details.g.skipped{border-left:5px solid #e8a200}
details.g>summary{cursor:pointer;padding:6px 10px;display:flex;gap:10px;align-items:baseline}
details.g>summary::before{content:"▸";color:#9aa0a6;flex:none;width:10px}
details.g[open]>summary::before{content:"▾"}
.body summary{cursor:pointer;color:#5f6368;font-size:12px;margin-top:6px}
summary::-webkit-details-marker{color:#9aa0a6}
.badge,.lvl{font-size:11px;font-weight:700;border-radius:3px;padding:1px 6px;flex:none}
.badge.passed{background:#e6f4ea;color:#137333}.badge.failed{background:#c5221f;color:#fff}
.badge.skipped{background:#fef3d6;color:#8a5a00}
.badge.xfailed{background:#ede7f6;color:#4527a0}.badge.xpassed{background:#c5221f;color:#fff}
details.g.xpassed{border-color:#eaa3a0;border-left:5px solid #c5221f}
details.g.xfailed{border-left:5px solid #7e57c2}
td.xpassed{background:#fbe3e2;color:#a50e0e;font-weight:700}td.xfailed{background:#ede7f6}
.dev{font-size:11px;border-radius:3px;padding:1px 6px;flex:none;margin-left:auto;
 background:#ede7f6;color:#4527a0;max-width:330px;overflow:hidden;text-overflow:ellipsis;
 white-space:nowrap}
.devline{margin:6px 0;padding:6px 10px;background:#f5f2fb;border-left:4px solid #7e57c2}
.devs{background:#fff;border:1px solid #d1c4e9;border-left:5px solid #7e57c2;border-radius:6px;
 padding:8px 14px;margin-top:14px}.devs table{margin-top:6px}.devs td{text-align:left}
.lvl{background:#eef0f3;color:#3c4043;min-width:54px;text-align:center}.lvl.MUST{background:#e8eaf6;color:#1a237e}
.gid{font-weight:600;flex:none;min-width:265px}.stmt{color:#3c4043}
.body{padding:4px 14px 12px;border-top:1px solid #eef0f3}
.ev{margin:10px 0;padding-top:6px;border-top:1px dashed #e2e4e9}
.check{font-weight:600;margin-bottom:4px}
.kind{font-size:11px;background:#eef0f3;border-radius:3px;padding:1px 6px;margin-right:4px;
 font-weight:700;color:#5f6368;text-transform:uppercase}
.kv{margin:3px 0}.kv b{display:inline-block;min-width:64px;color:#5f6368;font-weight:600}
.kv pre{display:block}
.cmp{display:grid;grid-template-columns:1fr 1fr;gap:10px}.cmp b{color:#5f6368}
.cmp.differ div:last-child pre{background:#fdecea;border-color:#f1b9b7}
.msg{background:#fff8f7;border-color:#f5c6c3}
.gapline{margin:8px 0 6px;padding:7px 10px;background:#fdecea;border-left:4px solid #d62728;
 color:#7f0000;font-weight:600}
.okline{color:#137333;margin:6px 0}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;margin:4px 0}
.key i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;
 vertical-align:-1px}
.key i.hatch{background:#e5e7eb;border:1px dashed #6b7280}
.wf{width:fit-content;max-width:100%;overflow-x:auto;
 border:1px solid #e2e4e9;border-radius:4px;background:#fff}
svg.waterfall{display:block}
svg .grid{stroke:#eceef1;stroke-width:1}svg .tick{font-size:10px;fill:#80868b}
svg .lbl{font-size:12px;fill:#1d2330}svg .lbl.more{fill:#6b7280;font-style:italic}
svg .dur{font-size:11px;fill:#5f6368}
svg .span.gap .lbl{fill:#a50e0e;font-weight:700}svg .span.gap .dur{fill:#a50e0e}
svg .gaprow{fill:#fdecea}
svg .hdr{fill:#e8eaf6}svg .hdr.sep{fill:#fff3e0}
svg .hdrtext{font-size:12px;font-weight:700;fill:#1a237e}
svg .hdr.sep+.hdrtext{fill:#8a4b00}
svg a{text-decoration:underline}
svg .note{font-size:12px;fill:#6b7280;font-style:italic}
svg g.span:hover rect:not(.gaprow){opacity:.8}
.failtxt{color:#c5221f;font-weight:700}
.tests{font-size:12px;color:#6b7280;margin-top:8px}
.tools{float:right}.tools button{font-size:12px;margin-left:4px}
"""

JS = "function setAll(o){document.querySelectorAll('details.g').forEach(d=>{d.open=o;});}"


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
        f"<style>{CSS}</style></head><body><main>",
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
        members.sort(key=lambda g: OUTCOME_ORDER.get(g.outcome, 4))
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
    path.write_text(render_report(results, grafana_url=grafana_url), encoding="utf-8")
    return path
