"""A flow as traces: the request's trace plus every trace linked to it, and when it is whole.

A consumer may continue the publisher's trace (its consume span a child of the publish span)
or start a new trace whose consume span *links* to the publish span. Either way the flow is
one connected graph: `follow_links` assembles it from the traces a backend holds, and
`missing_structure` says what the graph still lacks before it can be judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from obsconf.conformance.traces.expectation import Expectation
from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.semconv import is_consume, is_publish, subject_of


def follow_links(main: str, traces: Mapping[str, Iterable[Span]]) -> dict[str, list[Span]]:
    """Trace `main` plus every trace with a span linking (directly or through another linked
    trace) into it, by the link's trace id; `main` first."""
    pool = {tid: list(spans) for tid, spans in traces.items()}
    flow = {main: pool.pop(main, [])}
    grew = True
    while grew:
        grew = False
        for trace_id, spans in list(pool.items()):
            if any(link.trace_id in flow for span in spans for link in span.links):
                flow[trace_id] = pool.pop(trace_id)
                grew = True
    return flow


def flow_spans(traces: Mapping[str, Iterable[Span]]) -> list[Span]:
    return [span for spans in traces.values() for span in spans]


def missing_structure(spans: Iterable[Span], expectation: Expectation) -> list[str]:
    """What an unbroken flow has that `spans` lack: the entry service's SERVER span, a span of
    every expected service, and a publish and a consume span on every hop's subject."""
    spans = list(spans)
    missing = []
    entry = expectation.services[0] if expectation.services else None
    if not any(s.kind == "SERVER" and s.service == (entry or s.service) for s in spans):
        missing.append(f"the {entry or 'entry'} SERVER span")
    present = {s.service for s in spans}
    missing += [f"a span of {name}" for name in expectation.services if name not in present]
    for hop in expectation.hops:
        if not any(is_publish(s) and subject_of(s) == hop.subject for s in spans):
            missing.append(f"a publish span on {hop.subject}")
        if not any(is_consume(s) and subject_of(s) == hop.subject for s in spans):
            missing.append(f"a consume span on {hop.subject}")
    return missing


def signature(traces: Mapping[str, Iterable[Span]]) -> frozenset[tuple[str, str, int]]:
    """What must stay the same for a flow to count as settled: its spans (and their ends)."""
    return frozenset((s.trace_id, s.span_id, s.end_ns) for s in flow_spans(traces))
