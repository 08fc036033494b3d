"""The waterfall of a trace check: an inline SVG of the flow's spans with the gap in red.

x is the offset from the earliest span, width the duration, colour the service, indentation
the depth; the primary trace comes first, each other trace of the flow under its own header.
A large group of same-named sibling spans collapses as the text tree of
`obsconf.conformance.traces.render` does, and the rows are capped at MAX_ROWS (flagged spans
are always drawn).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.render import collapse_siblings
from obsconf.reports.markup import esc, explore_url, truncate_label

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


@dataclass
class Row:
    """One waterfall row: a trace header, a span, a collapsed group or a note."""

    kind: str  # "header" | "span" | "more" | "note"
    text: str = ""
    depth: int = 0
    span: Span | None = None
    service: str = ""
    start_ns: int = 0
    end_ns: int = 0
    count: int = 0  # of a "more" row: the spans it stands for
    trace_id: str = ""
    flagged: bool = False


def _start(span: Span) -> int:
    return span.start_ns


def _end(span: Span) -> int:
    return max(span.end_ns, span.start_ns)


def _label(span: Span) -> str:
    return f"{span.service}: {span.name} [{span.kind}]"


def _subtree_size(span_id: str, children: Mapping[str, Sequence[Span]]) -> int:
    """How many spans hang below `span_id` (iteratively; guards against cycles)."""
    seen: set[str] = set()
    stack = [span_id]
    while stack:
        for kid in children.get(stack.pop(), ()):
            kid_id = kid.span_id
            if kid_id not in seen:
                seen.add(kid_id)
                stack.append(kid_id)
    return len(seen)


def _visible_children(
    siblings: Sequence[Span],
    flagged: set[str],
    children: Mapping[str, Sequence[Span]],
    depth: int,
) -> list[Span | Row]:
    """Siblings to draw, collapsed as the text tree collapses them (`collapse_siblings`): a
    folded group is one `… N more` row after its first span, N counting the spans below the
    hidden ones too, its bar spanning the whole group."""
    items: list[Span | Row] = []
    for item in collapse_siblings(siblings, flagged):
        if isinstance(item, Span):
            items.append(item)
            continue
        group = (item.first, *item.hidden)
        items.append(
            Row(
                kind="more",
                depth=depth,
                service=item.first.service,
                text=f"{item.first.service}: {item.first.name}",
                start_ns=min(map(_start, group)),
                end_ns=max(map(_end, group)),
                count=sum(1 + _subtree_size(s.span_id, children) for s in item.hidden),
                trace_id=item.first.trace_id,
            )
        )
    return items


def waterfall_rows(spans: Sequence[Span], primary_trace: str, flagged: set[str]) -> list[Row]:
    """Rows of the waterfall: the primary trace first, then the other traces of the flow by
    start time, each under a header row, spans depth-first under their parents."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    order = sorted(by_trace, key=lambda t: (t != primary_trace, min(map(_start, by_trace[t]))))
    rows: list[Row] = []
    for trace_id in order:
        trace_spans = sorted(by_trace[trace_id], key=_start)
        ids = {s.span_id for s in trace_spans}
        children: dict[str, list[Span]] = defaultdict(list)
        roots: list[Span] = []
        for span in trace_spans:
            parent = span.parent_span_id
            if parent and parent in ids and parent != span.span_id:
                children[parent].append(span)
            else:
                roots.append(span)
        header = Row(kind="header", trace_id=trace_id)
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
        stack: list[Span | Row] = list(reversed(_visible_children(roots, flagged, children, 0)))
        depths = [0] * len(stack)
        while stack:
            item, depth = stack.pop(), depths.pop()
            if isinstance(item, Row):
                rows.append(item)
                continue
            span_id = item.span_id
            if span_id in visited:
                continue
            visited.add(span_id)
            rows.append(
                Row(
                    kind="span",
                    depth=depth,
                    span=item,
                    service=item.service,
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
    base = 10.0 ** math.floor(math.log10(raw))
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


def service_colours(spans: Iterable[Span]) -> dict[str, str]:
    """A colour per service, in order of first start."""
    colours: dict[str, str] = {}
    for span in sorted(spans, key=_start):
        if span.service not in colours:
            colours[span.service] = PALETTE[len(colours) % len(PALETTE)]
    return colours


def render_waterfall(
    spans: Sequence[Span],
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
        span = row.span
        if span is None:  # a span row always has its span
            continue
        label = _label(span)
        error = span.status == "ERROR"
        marker = "▶ " if row.flagged else ""
        tip = (
            f"{label}\nspan {span.span_id} · parent "
            f"{span.parent_span_id or '(none)'}\ntrace {row.trace_id}\n"
            f"start +{_fmt_ms((row.start_ns - t0) / 1e6)} · {dur} · status "
            f"{span.status} {span.status_message}"
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
