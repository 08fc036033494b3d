"""The parent/child graph of a set of spans: roots, orphans, children in start order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from obsconf.conformance.traces.model import Span


def start_key(span: Span) -> tuple[int, str]:
    """The order spans are read in everywhere: by start, then by span id."""
    return (span.start_ns, span.span_id)


@dataclass(frozen=True)
class TraceTree:
    """The parent/child graph of a set of spans (normally one trace)."""

    spans: Mapping[str, Span]  # by span id (the first of any duplicates)
    children: Mapping[str, tuple[Span, ...]]  # by parent span id, sorted by start
    roots: tuple[Span, ...]  # no parent id (or a parent id the caller owns), sorted by start
    orphans: tuple[Span, ...]  # parent id names no span of the trace, sorted by start

    @property
    def start_ns(self) -> int:
        return min((s.start_ns for s in self.spans.values()), default=0)

    def parent(self, span: Span) -> Span | None:
        return self.spans.get(span.parent_span_id) if span.parent_span_id else None

    def walk(self) -> Iterator[tuple[Span, int]]:
        """(span, depth) depth-first from each root, then each orphan, then any span left over
        (only spans caught in a parent cycle), children in start order."""
        seen: set[str] = set()
        leftovers = sorted(self.spans.values(), key=start_key)
        for top in (*self.roots, *self.orphans, *leftovers):
            stack = [(top, 0)]
            while stack:
                span, depth = stack.pop()
                if span.span_id in seen:
                    continue
                seen.add(span.span_id)
                yield span, depth
                stack.extend((c, depth + 1) for c in reversed(self.children.get(span.span_id, ())))


def build_tree(spans: Iterable[Span], external_parents: Collection[str] = ()) -> TraceTree:
    """The tree of `spans`; a span whose parent id is in `external_parents` (a caller's span
    the test sent in `traceparent`) counts as a root, not an orphan."""
    by_id: dict[str, Span] = {}
    for span in sorted(spans, key=start_key):
        by_id.setdefault(span.span_id, span)
    children: dict[str, list[Span]] = defaultdict(list)
    roots: list[Span] = []
    orphans: list[Span] = []
    for span in by_id.values():  # already in start order
        if not span.parent_span_id or span.parent_span_id in external_parents:
            roots.append(span)
        elif span.parent_span_id not in by_id:
            orphans.append(span)
        if span.parent_span_id:
            children[span.parent_span_id].append(span)
    return TraceTree(
        spans=by_id,
        children={pid: tuple(kids) for pid, kids in children.items()},
        roots=tuple(roots),
        orphans=tuple(orphans),
    )
