"""The span model every trace check works on, parsed from OTLP JSON.

OTLP JSON is what Jaeger's trace-by-id API returns (under `result`) and what Tempo's returns
(under `trace`, or as `batches`), so one parser serves every trace store adapter. Ids are
lower-case hex; kinds and status codes are normalised to short upper-case names (`SERVER`,
`PRODUCER`, `ERROR`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


@dataclass(frozen=True)
class Link:
    trace_id: str
    span_id: str


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root
    name: str
    kind: str  # SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL, UNSPECIFIED
    service: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    status: str = "UNSET"  # UNSET, OK, ERROR
    status_message: str = ""
    links: tuple[Link, ...] = ()
    trace_state: str = ""

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def is_root(self) -> bool:
        return not self.parent_span_id

    def describe(self) -> str:
        return f"{self.service}: {self.name} [{self.kind}] span {self.span_id}"


def _hex_id(value: str | None) -> str:
    """OTLP JSON ids are hex; some encoders emit base64 of the raw bytes instead."""
    if not value:
        return ""
    lowered = value.lower()
    if len(lowered) in (16, 32) and all(c in "0123456789abcdef" for c in lowered):
        return "" if set(lowered) == {"0"} else lowered
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return lowered
    return "" if not any(raw) else raw.hex()


def _any_value(value: Mapping[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values", []))
    return None


def _attributes(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {item["key"]: _any_value(item.get("value", {})) for item in items}


def _enum(value: Any, names: Mapping[int, str], prefix: str) -> str:
    if isinstance(value, int):
        return names.get(value, str(value))
    if isinstance(value, str) and value:
        return value.removeprefix(prefix)
    return names[0]


def parse_otlp_json(document: Mapping[str, Any]) -> list[Span]:
    """Spans of an OTLP JSON `{"resourceSpans": [...]}` document (or Tempo's `batches`)."""
    spans: list[Span] = []
    for resource_spans in document.get("resourceSpans") or document.get("batches") or []:
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        service = str(resource.get("service.name", "unknown"))
        scopes = resource_spans.get("scopeSpans") or resource_spans.get(
            "instrumentationLibrarySpans"
        )
        for scope_spans in scopes or []:
            for raw in scope_spans.get("spans", []):
                status = raw.get("status") or {}
                spans.append(
                    Span(
                        trace_id=_hex_id(raw.get("traceId")),
                        span_id=_hex_id(raw.get("spanId")),
                        parent_span_id=_hex_id(raw.get("parentSpanId")),
                        name=raw.get("name", ""),
                        kind=_enum(raw.get("kind", 0), KINDS, "SPAN_KIND_"),
                        service=service,
                        start_ns=int(raw.get("startTimeUnixNano", 0)),
                        end_ns=int(raw.get("endTimeUnixNano", 0)),
                        attributes=_attributes(raw.get("attributes", [])),
                        status=_enum(status.get("code", 0), STATUS, "STATUS_CODE_"),
                        status_message=status.get("message", ""),
                        links=tuple(
                            Link(_hex_id(link.get("traceId")), _hex_id(link.get("spanId")))
                            for link in raw.get("links", [])
                        ),
                        trace_state=raw.get("traceState", ""),
                    )
                )
    return sorted(spans, key=lambda s: (s.start_ns, s.span_id))
