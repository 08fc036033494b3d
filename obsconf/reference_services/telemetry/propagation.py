"""The W3C Trace Context propagator of the reference services.

OpenTelemetry's propagator, plus the one rule it misses: a request with two `traceparent`
fields carries no valid traceparent (the header is not a list), so the trace restarts. The
propagation fault modes live here too: `lenient-traceparent`, `first-tracestate-only` and
`lenient-tracestate`.
"""

from __future__ import annotations

import re

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import CarrierT, Getter, default_getter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState

from obsconf.reference_services import faults

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# `lenient-traceparent`: any version, either case, whatever follows the flags.
_LENIENT = re.compile(r"^[ \t]*[0-9a-fA-F]{2}-([0-9a-fA-F]{32})-([0-9a-fA-F]{16})-([0-9a-fA-F]{2})")


class _Override(Getter[CarrierT]):
    """A getter answering some fields from a dict and the rest from the carrier."""

    def __init__(self, inner: Getter[CarrierT], fields: dict[str, list[str] | None]) -> None:
        self.inner = inner
        self.fields = fields

    def get(self, carrier: CarrierT, key: str) -> list[str] | None:
        if key.lower() in self.fields:
            return self.fields[key.lower()]
        return self.inner.get(carrier, key)

    def keys(self, carrier: CarrierT) -> list[str]:
        return self.inner.keys(carrier)


class _VerbatimTraceState(TraceState):
    """`lenient-tracestate`: the incoming header passed on as it came, never validated."""

    def __init__(self, header: str) -> None:
        super().__init__()
        self._header = header

    def to_header(self) -> str:
        return self._header

    def __len__(self) -> int:
        return len([m for m in self._header.split(",") if m.strip(" \t")])


class TraceContextPropagator(TraceContextTextMapPropagator):
    """W3C traceparent/tracestate; two traceparent fields are invalid (restart the trace)."""

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        parents = getter.get(carrier, TRACEPARENT) or []
        fields: dict[str, list[str] | None] = {}
        if faults.enabled("lenient-traceparent"):
            fields[TRACEPARENT] = _lenient(parents)
        elif len(parents) > 1:
            return context if context is not None else Context()
        states = getter.get(carrier, TRACESTATE)
        if states and faults.enabled("first-tracestate-only"):
            fields[TRACESTATE] = states[:1]
        extracted = super().extract(carrier, context, _Override(getter, fields))
        if states and faults.enabled("lenient-tracestate"):
            return _with_verbatim_state(extracted, ",".join(states))
        return extracted


def _lenient(values: list[str]) -> list[str] | None:
    """The first traceparent, rewritten as a valid version-00 header if it looks like one."""
    match = _LENIENT.match(values[0]) if values else None
    if not match:
        return values[:1] or None
    trace_id, span_id, flags = (g.lower() for g in match.groups())
    return [f"00-{trace_id}-{span_id}-{flags}"]


def _with_verbatim_state(context: Context, header: str) -> Context:
    parent = trace.get_current_span(context).get_span_context()
    if not parent.is_valid:
        return context
    verbatim = trace.SpanContext(
        parent.trace_id,
        parent.span_id,
        is_remote=parent.is_remote,
        trace_flags=parent.trace_flags,
        trace_state=_VerbatimTraceState(header),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(verbatim), context)
