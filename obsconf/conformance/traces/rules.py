"""The trace rules: turn spans into findings a person can act on.

`analyse` checks one trace (roots, orphans, span kinds, consumer parents, clocks, error status,
and, given an `Expectation`, the service path); `analyse_flow` checks one client flow that
ended up split over several traces. Every `Finding` names the spans and services concerned
and its most likely cause, and findings are ordered so that the first one is the break that
explains the others (`findings.gap_summary`). Supports the TRC-* and PROP-* guarantees.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from obsconf.conformance.traces.expectation import NO_EXPECTATION, Expectation
from obsconf.conformance.traces.findings import Finding, FindingCode, FindingSet, no_spans
from obsconf.conformance.traces.model import Link, Span
from obsconf.conformance.traces.semconv import (
    http_status_code,
    is_consume,
    is_publish,
    messaging_role,
    subject_of,
)
from obsconf.conformance.traces.tree import TraceTree, build_tree, start_key


def _label(span: Span) -> str:
    """`order-service span 'process user.created' (CONSUMER)`: how messages name a span."""
    return f"{span.service} span '{span.name}' ({span.kind})"


def _on(subject: str) -> str:
    return f"on subject {subject}" if subject else "on an unknown subject"


def _check_trace_ids(tree: TraceTree, found: FindingSet) -> None:
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in tree.spans.values():
        by_trace[span.trace_id].append(span)
    if len(by_trace) < 2:
        return
    first = (tree.roots or tree.orphans or tuple(tree.spans.values()))[0]
    for trace_id, members in sorted(by_trace.items()):
        if trace_id == first.trace_id:
            continue
        found.add(
            FindingCode.MIXED_TRACE_IDS,
            members[0],
            f"{len(members)} of the spans given, starting with {_label(members[0])}, belong to "
            f"trace {trace_id}, not to trace {first.trace_id} of {_label(first)}.",
            "the spans were collected by time window or service instead of by trace id, or a "
            "service started a new trace mid-flow (use analyse_flow for a flow split over traces)",
        )


def _linked_producer(span: Span, index: Mapping[str, Span]) -> tuple[bool, Span | None]:
    """(accepted, offending link target) for a consume span judged by its links: accepted if a
    link names a PRODUCER span on the same subject, or a span of a trace we do not hold (a
    dangling link into a trace we hold is reported by `_check_dangling_links`)."""
    held = {s.trace_id for s in index.values()}
    offending: Span | None = None
    for link in span.links:
        target = index.get(link.span_id)
        if target is None and link.trace_id not in held:
            return True, None
        if target is not None and _producer_problem(span, target) is None:
            return True, None
        offending = offending or target
    return False, offending


def dangling_links(span: Span, index: Mapping[str, Span]) -> list[Link]:
    """Links of `span` into a trace we hold that name no span of it."""
    held = {s.trace_id for s in index.values()}
    return [link for link in span.links if link.trace_id in held and link.span_id not in index]


def _producer_problem(consumer: Span, producer: Span) -> str | None:
    """Why `producer` cannot be the publish span of `consumer` ("kind" or "subject"), or None."""
    if producer.kind != "PRODUCER":
        return "kind"
    theirs, ours = subject_of(producer), subject_of(consumer)
    if theirs and ours and theirs != ours:
        return "subject"
    return None


def _check_roots(
    tree: TraceTree, exp: Expectation, index: Mapping[str, Span], found: FindingSet, main: str
) -> None:
    """Consume spans that root a trace; any other root but the first of the flow's main trace."""
    first_plain: Span | None = None
    for root in tree.roots:
        if is_consume(root):
            _check_consumer_root(root, exp, index, found)
        elif root.trace_id != main:
            subject = subject_of(root) or _hop_subject(exp, root.service)
            found.add(
                FindingCode.MULTIPLE_ROOTS,
                root,
                f"{_label(root)} started a new trace {root.trace_id}"
                f"{f' after subject {subject}' if subject else ''} instead of continuing the "
                f"flow's trace {main}.",
                f"{root.service} did not continue the incoming context (no span extracted the "
                f"traceparent from the incoming message or request), so its first span became "
                f"a root",
            )
        elif first_plain is None:
            first_plain = root
        else:
            found.add(
                FindingCode.MULTIPLE_ROOTS,
                root,
                f"{_label(root)} is a second root of trace {root.trace_id}, besides "
                f"{_label(first_plain)}.",
                "the span was started without the incoming context as its parent (context not "
                "extracted at that boundary), or the spans of two requests were read as one",
            )


def counted_roots(spans: Iterable[Span], exp: Expectation) -> list[Span]:
    """The roots that count against "one root per flow": spans with no parent (or the caller's
    span as parent), except, under `link`, consume spans linking into the flow (whether the
    link is sound is judged by the orphan and producer checks, as a parent would be)."""
    index = {s.span_id: s for s in spans}
    held = {s.trace_id for s in index.values()}
    return [
        s
        for s in sorted(index.values(), key=start_key)
        if (not s.parent_span_id or s.parent_span_id in exp.external_parents)
        and not (
            exp.consumer_relation == "link"
            and is_consume(s)
            and any(link.trace_id in held for link in s.links)
        )
    ]


def _hop_subject(exp: Expectation, service: str) -> str:
    hop = exp.hop_into(service)
    return hop.subject if hop else ""


def _check_consumer_root(
    root: Span, exp: Expectation, index: Mapping[str, Span], found: FindingSet
) -> None:
    accepted, offending = _linked_producer(root, index)
    if exp.consumer_relation == "link" and accepted:
        return
    if exp.consumer_relation == "link" and dangling_links(root, index):
        return  # reported as an orphan link by _check_dangling_links
    if offending is not None and exp.consumer_relation == "link":
        _report_bad_producer(root, offending, found, via="links to")
        return
    subject = subject_of(root) or _hop_subject(exp, root.service)
    if root.links and exp.consumer_relation == "parent":
        cause = (
            "the consumer links to the publish span instead of making it its parent, but the "
            "target declares consumer_relation=parent"
        )
    else:
        cause = (
            "the message carried no traceparent header: context was not injected on publish, "
            "or the consumer did not extract it"
        )
    found.add(
        FindingCode.CONSUMER_ROOT,
        root,
        f"{root.service} consume span '{root.name}' {_on(subject)} has no parent, so it "
        f"started a new trace {root.trace_id} instead of continuing the publisher's trace.",
        cause,
    )


def _report_bad_producer(consumer: Span, producer: Span, found: FindingSet, via: str) -> None:
    problem = _producer_problem(consumer, producer)
    if problem == "subject":
        message = (
            f"{consumer.service} consume span '{consumer.name}' {_on(subject_of(consumer))} "
            f"{via} {_label(producer)}, which published on a different subject, "
            f"{subject_of(producer)}."
        )
        cause = (
            "the trace context of another message was used (e.g. one context shared between "
            "messages or consumers)"
        )
    else:
        message = (
            f"{consumer.service} consume span '{consumer.name}' {via} {_label(producer)}, "
            f"which is not a PRODUCER span."
        )
        if is_publish(producer):
            cause = f"the publish span was created with kind {producer.kind}; it must be PRODUCER"
        elif producer.service == consumer.service:
            cause = (
                f"{consumer.service} parented its consume span on its own current context "
                "instead of on the context extracted from the message headers"
            )
        else:
            cause = (
                f"{producer.service} injected the context of '{producer.name}' into the "
                "message: inject while the PRODUCER publish span is current"
            )
    found.add(FindingCode.CONSUMER_PARENT_NOT_PRODUCER, consumer, message, cause)


def _check_orphans(tree: TraceTree, found: FindingSet) -> None:
    for orphan in tree.orphans:
        if is_consume(orphan):
            cause = (
                "the producer's publish span was never exported (or exported to another backend)"
            )
        elif orphan.kind == "SERVER":
            cause = (
                "the caller's span was never exported (or exported to another backend), or the "
                "caller sent a traceparent naming a span it did not record"
            )
        else:
            cause = (
                "the parent span was never exported: dropped, not yet flushed when the trace "
                "was read, or sent to another backend"
            )
        found.add(
            FindingCode.ORPHAN,
            orphan,
            f"{_label(orphan)} names parent span {orphan.parent_span_id}, which is not in "
            f"trace {orphan.trace_id}.",
            cause,
        )


def _check_dangling_links(tree: TraceTree, index: Mapping[str, Span], found: FindingSet) -> None:
    for span in tree.spans.values():
        for link in dangling_links(span, index):
            found.add(
                FindingCode.ORPHAN,
                span,
                f"{_label(span)} links to span {link.span_id} of trace {link.trace_id}, which "
                "is not in that trace.",
                "the linked (publish) span was never exported, or the context of a span that "
                "is not recorded was injected into the message",
            )


def _check_kinds(tree: TraceTree, found: FindingSet) -> None:
    for span in tree.spans.values():
        role = messaging_role(span)
        expected = {"publish": "PRODUCER", "consume": "CONSUMER"}.get(role or "")
        if expected is None or span.kind == expected:
            continue
        verb = "publishes" if role == "publish" else "consumes"
        found.add(
            FindingCode.WRONG_KIND,
            span,
            f"{span.service} span '{span.name}' {verb} a message {_on(subject_of(span))} but has "
            f"kind {span.kind} instead of {expected}.",
            f"the span was started with the default or a wrong kind; start it with "
            f"SpanKind.{expected}",
        )


def _check_consumer_parents(
    tree: TraceTree, exp: Expectation, index: Mapping[str, Span], found: FindingSet
) -> None:
    for span in tree.spans.values():
        parent = tree.parent(span)
        if parent is None or not is_consume(span) or _producer_problem(span, parent) is None:
            continue
        if exp.consumer_relation == "link" and _linked_producer(span, index)[0]:
            continue
        _report_bad_producer(span, parent, found, via="has parent")


def _check_clock(
    tree: TraceTree, exp: Expectation, index: Mapping[str, Span], found: FindingSet
) -> None:
    """Children must not start before their parent; under `link`, a consume span must not
    start before the publish span it links to (a message cannot be consumed before it is sent)."""
    tolerance_ns = exp.tolerance_ms * 1e6
    for span in tree.spans.values():
        before = [(tree.parent(span), "its parent")]
        if exp.consumer_relation == "link" and is_consume(span):
            before += [(index.get(link.span_id), "the span it links to") for link in span.links]
        for parent, relation in before:
            if parent is None or span.start_ns >= parent.start_ns - tolerance_ns:
                continue
            _report_early(span, parent, relation, exp, found)


def _report_early(
    span: Span, parent: Span, relation: str, exp: Expectation, found: FindingSet
) -> None:
    early_ms = (parent.start_ns - span.start_ns) / 1e6
    cause = (
        "a start time taken from a wrong clock or set by hand (both spans come from the same "
        "service, so host clock skew is unlikely)"
        if span.service == parent.service
        else f"clock skew between the hosts or containers of {parent.service} and "
        f"{span.service}, or a start time set by hand"
    )
    found.add(
        FindingCode.CHILD_BEFORE_PARENT,
        span,
        f"{_label(span)} starts {early_ms:.1f} ms before {relation} {_label(parent)} "
        f"(tolerance {exp.tolerance_ms:g} ms).",
        cause,
    )


def _check_error_status(tree: TraceTree, found: FindingSet) -> None:
    for span in tree.spans.values():
        code = http_status_code(span)
        if span.kind != "SERVER" or code is None or code < 500 or span.status == "ERROR":
            continue
        found.add(
            FindingCode.ERROR_WITHOUT_STATUS,
            span,
            f"{span.service} server span '{span.name}' answered HTTP {code} but its status is "
            f"{span.status}, not ERROR.",
            "the handler turned the error into a 5xx response without setting the span status "
            "to ERROR (or the instrumentation does not map 5xx to ERROR)",
        )


def _descends_from(span: Span, service: str, index: Mapping[str, Span], via_links: bool) -> bool:
    """Whether an ancestor of `span` (through parents, and links if `via_links`) is a span of
    `service`."""
    seen: set[str] = set()
    pending = [span]
    while pending:
        current = pending.pop()
        ids = [current.parent_span_id] + (
            [link.span_id for link in current.links] if via_links else []
        )
        for ancestor in (index.get(i) for i in ids if i and i not in seen):
            if ancestor is None:
                continue
            if ancestor.service == service:
                return True
            seen.add(ancestor.span_id)
            pending.append(ancestor)
    return False


def _check_path(
    spans: Iterable[Span], exp: Expectation, index: Mapping[str, Span], found: FindingSet
) -> None:
    first: dict[str, Span] = {}
    for span in sorted(spans, key=start_key):
        first.setdefault(span.service, span)
    path = " → ".join(exp.services)
    for rank, service in enumerate(exp.services):
        if service in first:
            continue
        hop = exp.hop_into(service)
        nameless = sorted(s for s in first if s.startswith("unknown"))
        if nameless:
            cause = (
                f"spans with service.name '{nameless[0]}' are present: a service's resource "
                "does not set service.name"
            )
        elif hop:
            cause = (
                f"the message {hop.subject} from {hop.producer_service} produced no span of "
                f"{service} here: its consume span started a new trace (context lost on the "
                "hop) or was not exported"
            )
        else:
            cause = (
                f"{service} was not reached in this flow, or its spans went to another trace "
                "or were not exported"
            )
        found.add(
            FindingCode.MISSING_SERVICE,
            None,
            f"No span of {service} is in the trace (expected path: {path}).",
            cause,
            service=service,
            rank=rank,
        )
    tolerance_ns = exp.tolerance_ms * 1e6
    for before, after in zip(exp.services, exp.services[1:], strict=False):
        if before not in first or after not in first:
            continue
        early, late = first[before], first[after]
        hop = exp.hop_between(before, after)
        hop_text = f" on subject {hop.subject}" if hop else ""
        if not _descends_from(late, before, index, exp.consumer_relation == "link"):
            found.add(
                FindingCode.SERVICE_ORDER,
                late,
                f"The first span of {after}, '{late.name}', does not descend from any span of "
                f"{before}, so the path {before} → {after} is broken.",
                f"the trace context was lost between {before} and {after}{hop_text}: the hop "
                "started a new trace, or its parent span was not exported",
            )
        elif late.start_ns < early.start_ns - tolerance_ns:
            found.add(
                FindingCode.SERVICE_ORDER,
                late,
                f"The first span of {after}, '{late.name}', starts "
                f"{(early.start_ns - late.start_ns) / 1e6:.1f} ms before the first span of "
                f"{before}, '{early.name}'.",
                f"clock skew between the hosts of {before} and {after}, or {after} handled a "
                "message of an earlier flow",
            )


def _check_trace(
    tree: TraceTree, exp: Expectation, index: Mapping[str, Span], found: FindingSet, main: str
) -> None:
    _check_trace_ids(tree, found)
    _check_roots(tree, exp, index, found, main)
    _check_orphans(tree, found)
    _check_dangling_links(tree, index, found)
    _check_kinds(tree, found)
    _check_consumer_parents(tree, exp, index, found)
    _check_clock(tree, exp, index, found)
    _check_error_status(tree, found)


# --- entry points -----------------------------------------------------------------------------


def analyse(spans: Iterable[Span], expectation: Expectation | None = None) -> list[Finding]:
    """Every finding for the spans of one trace, the explaining break first."""
    exp = expectation or NO_EXPECTATION
    tree = build_tree(spans, exp.external_parents)
    if not tree.spans:
        return no_spans()
    found = FindingSet()
    main = next(tree.walk())[0].trace_id
    _check_trace(tree, exp, tree.spans, found, main)
    _check_path(tree.spans.values(), exp, tree.spans, found)
    return found.sorted()


def analyse_flow(
    traces: Mapping[str, Iterable[Span]], expectation: Expectation | None = None
) -> list[Finding]:
    """Findings for one client flow whose spans (found by time window) lie in several traces.

    The main trace is the one holding the first span of the first expected service (else the
    earliest span); every root of another trace is reported as the point where the flow split
    (`consumer-root` for a consume span, else `multiple-roots`), unless the target declares
    links and the root links to a PRODUCER span. Per-trace findings follow; the service path is
    checked over all traces together.
    """
    exp = expectation or NO_EXPECTATION
    trees = {tid: build_tree(spans, exp.external_parents) for tid, spans in traces.items()}
    trees = {tid: tree for tid, tree in trees.items() if tree.spans}
    if not trees:
        return no_spans()
    index = {sid: s for tree in trees.values() for sid, s in tree.spans.items()}
    everything = sorted(index.values(), key=start_key)
    head = exp.services[:1]
    anchor = next((s for s in everything if s.service in head), everything[0])
    main = anchor.trace_id
    found = FindingSet()
    for tree in trees.values():
        _check_trace(tree, exp, index, found, main)
    _check_path(everything, exp, index, found)
    return found.sorted()
