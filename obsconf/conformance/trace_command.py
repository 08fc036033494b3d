"""`obsconf trace TRACE_ID`: fetch a trace, print its span tree and name each gap."""

from __future__ import annotations

from obsconf.conformance.clients.errors import BackendError
from obsconf.conformance.clients.registry import DEFAULT_KIND, StoreSpec, open_store
from obsconf.conformance.clients.traces import TraceNotFound
from obsconf.conformance.target import Target
from obsconf.conformance.traces.expectation import expectation_from_target
from obsconf.conformance.traces.findings import gap_summary
from obsconf.conformance.traces.render import render_tree
from obsconf.conformance.traces.rules import analyse


def explain_trace(trace_id: str, traces_url: str, target: Target | None) -> tuple[int, str]:
    """(exit status, text): 0 with no finding, 1 with findings, 2 when the trace is not there."""
    spec = (target.backends.traces if target else None) or StoreSpec(DEFAULT_KIND["traces"])
    client = open_store("traces", StoreSpec(spec.kind, traces_url, spec.options))
    try:
        spans = client.trace(trace_id)
    except TraceNotFound:
        return 2, f"trace {trace_id} not found: asked {client.trace_url(trace_id)}"
    except BackendError as error:
        return 2, str(error)
    finally:
        client.close()
    expectation = expectation_from_target(target) if target else None
    if expectation is not None:
        # The entry span's parent is the caller's span (a client outside the trace store).
        first = spans[0]
        if first.parent_span_id and first.kind == "SERVER":
            from dataclasses import replace

            expectation = replace(expectation, external_parents=frozenset({first.parent_span_id}))
    findings = analyse(spans, expectation)
    text = render_tree(spans, findings)
    if findings:
        text += f"\n\n{gap_summary(findings)}\nlikely cause: {findings[0].likely_cause}"
    return (1 if findings else 0), text
