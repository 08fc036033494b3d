"""Text rendering of a span tree with its gaps marked, for failure messages.

The output is stable (golden tests compare it) and stays short for large traces: a run of
more than `COLLAPSE_OVER` sibling spans of the same service and name shows its first span and
one `… N more` line (spans named in findings are always shown). `collapse_siblings` is that
rule; the report's waterfall (`obsconf.reports.waterfall`) folds its rows by it too.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from obsconf.conformance.traces.findings import Finding
from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.tree import TraceTree, build_tree

COLLAPSE_OVER = 20
ORPHANS_HEADING = "orphans (parent not in trace):"


def render_span_line(span: Span, trace_start_ns: int | None = None) -> str:
    """`service: name [KIND] 12.3 ms at +4.0 ms  ERROR: message`; the offset needs a start."""
    line = f"{span.service}: {span.name} [{span.kind}] {span.duration_ms:.1f} ms"
    if trace_start_ns is not None:
        line += f" at +{(span.start_ns - trace_start_ns) / 1e6:.1f} ms"
    if span.status == "ERROR":
        line += f"  ERROR: {span.status_message}" if span.status_message else "  ERROR"
    return line


@dataclass(frozen=True)
class Collapsed:
    """Sibling spans folded into one line: `first` stays drawn, `hidden` (of its service and
    name, in start order) do not."""

    first: Span
    hidden: tuple[Span, ...]


def collapse_siblings(siblings: Sequence[Span], shown: Collection[str]) -> list[Span | Collapsed]:
    """The siblings to draw, in order: of a group of more than COLLAPSE_OVER siblings with the
    same service and name, the first span, then one Collapsed standing for the others; a span
    whose id is in `shown` is always drawn where it is."""
    sizes = Counter((s.service, s.name) for s in siblings)
    groups: dict[tuple[str, str], tuple[Span, list[Span]]] = {}
    order: list[Span | tuple[str, str]] = []  # spans, and the key of a group after its first
    for span in siblings:
        key = (span.service, span.name)
        if sizes[key] <= COLLAPSE_OVER or span.span_id in shown:
            order.append(span)
        elif key in groups:
            groups[key][1].append(span)
        else:
            groups[key] = (span, [])
            order += [span, key]
    items: list[Span | Collapsed] = []
    for entry in order:
        if isinstance(entry, Span):
            items.append(entry)
        elif groups[entry][1]:
            first, hidden = groups[entry]
            items.append(Collapsed(first, tuple(hidden)))
    return items


def _visible(siblings: Sequence[Span], marked: Mapping[str, list[str]]) -> list[Span | str]:
    """The siblings to draw, with large same-name groups collapsed into one `… N more` line."""
    return [
        f"… {len(item.hidden)} more `{item.first.name}` spans ({item.first.service})"
        if isinstance(item, Collapsed)
        else item
        for item in collapse_siblings(siblings, marked)
    ]


def _draw(
    tree: TraceTree,
    tops: Sequence[Span],
    marked: Mapping[str, list[str]],
    lines: list[str],
    tag_traces: bool,
) -> None:
    """Append the subtrees of `tops`, each top tagged with its trace id if `tag_traces`
    (iteratively: traces can be deeper than the recursion limit)."""
    start = tree.start_ns
    stack: list[tuple[Span | str, str, str]] = [
        (t, "", "") for t in reversed(_visible(tops, marked))
    ]
    while stack:
        item, lead, prefix = stack.pop()
        if isinstance(item, str):
            lines.append(lead + item)
            continue
        line = lead + render_span_line(item, start)
        if tag_traces and not lead:
            line += f"  [trace {item.trace_id}]"
        if item.parent_span_id and item.parent_span_id not in tree.spans:
            line += f"  (parent {item.parent_span_id} not in trace)"
        if item.span_id in marked:
            line += "  <-- GAP: " + " | ".join(marked[item.span_id])
        lines.append(line)
        kids = _visible(tree.children.get(item.span_id, ()), marked)
        for i in reversed(range(len(kids))):
            last = i == len(kids) - 1
            stack.append(
                (kids[i], prefix + ("└─ " if last else "├─ "), prefix + ("   " if last else "│  "))
            )


def render_tree(spans: Iterable[Span], findings: Iterable[Finding] = ()) -> str:
    """The span tree, roots first then orphans, gaps marked, findings listed at the end."""
    tree = build_tree(spans)
    findings = list(findings)
    marked: dict[str, list[str]] = defaultdict(list)
    for finding in findings:
        if finding.span_id:
            marked[finding.span_id].append(finding.message)
    lines: list[str] = []
    trace_ids: list[str] = []
    if tree.spans:
        ordered = list(tree.spans.values())  # build_tree keeps them in start order
        trace_ids = list(dict.fromkeys(s.trace_id for s in ordered))
        services = {s.service for s in ordered}
        total_ms = (max(s.end_ns for s in ordered) - tree.start_ns) / 1e6
        lines.append(
            f"trace{'s' if len(trace_ids) > 1 else ''} {', '.join(trace_ids)}: {len(ordered)} "
            f"spans, {len(services)} services, {total_ms:.1f} ms"
        )
    else:
        lines.append("no spans")
    _draw(tree, tree.roots, marked, lines, len(trace_ids) > 1)
    if tree.orphans:
        lines.append(ORPHANS_HEADING)
        _draw(tree, tree.orphans, marked, lines, len(trace_ids) > 1)
    lines.append("findings:" if findings else "findings: none")
    lines.extend(f"- [{f.code}] {f.message} Likely cause: {f.likely_cause}." for f in findings)
    return "\n".join(lines) + "\n"
