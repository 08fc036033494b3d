"""Loki adapter (kind `loki`): LogQL over Loki's HTTP query API.

Built from Grafana Loki's published HTTP API reference ("Query logs within a range of time":
`GET /loki/api/v1/query_range`; "Readiness probe": `GET /ready`), never run here (Loki is AGPL). A
service's lines are the stream `{service_name="…"}` (the label Loki 3 derives from `service`,
`app`, … or OTLP's `service.name`; `service_label` names another). Times are Unix nanoseconds;
results are `streams`, each with `values` of `[ns-string, line]` pairs, read forward in pages
of `limit` entries. `tenant` sets the `X-Scope-OrgID` header of a multi-tenant Loki.

Two kinds of entries are read. A line shipped from a file is the service's JSON line, and field
equality is `|= "value" | json | field="value"`. A log record that came in over OTLP (Loki 3's
native OTLP ingestion, "Ingesting logs to Loki using OpenTelemetry Collector": "Format
considerations") has its body as the line and everything else — `trace_id`, `span_id`,
`severity_text`, the record's attributes, `.` in names turned to `_` — as structured metadata,
filtered by a label filter straight after the selector, `{service_name="…"} | field="value"`,
with no parser. So a filtered read runs both queries and takes the entries of either. Every
query asks for `X-Loki-Response-Encoding-Flags: categorize-labels`, so an entry comes as
`[ns, line, {"structuredMetadata": {…}, "parsed": {…}}]` with the stream's own labels apart
(Loki PR #10419, "Flag categorize labels on streams response"); a Loki that ignores the flag
folds structured metadata into the stream's labels, which are then read as the metadata.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from obsconf.conformance.clients.errors import BackendError, get_json
from obsconf.conformance.clients.logs import LogLine, otlp_level, parse_line
from obsconf.conformance.timefmt import rfc3339

SERVICE_LABEL = "service_name"
PAGE = 5000  # Loki's default max_entries_limit_per_query
FAR_PAST_S = 30 * 24 * 3600  # window start when none is given (Loki needs one)
CATEGORIZE = "categorize-labels"
# Structured metadata Loki writes from an OTLP LogRecord's own fields (not its attributes), and
# what it adds to every entry: not the service's keys.
OTLP_RECORD_KEYS = {"trace_id", "span_id", "severity_text", "severity_number", "observed_timestamp"}
BOOKKEEPING = {
    "severity_text",
    "severity_number",
    "observed_timestamp",
    "flags",
    "dropped_attributes_count",
    "detected_level",
    "scope_name",
    "scope_version",
    "scope_dropped_attributes_count",
}


@dataclass(frozen=True)
class Entry:
    ns: int
    line: str
    labels: dict[str, str]  # the stream's labels
    metadata: dict[str, str]  # the entry's structured metadata


def is_otlp_record(metadata: dict[str, str]) -> bool:
    """Whether an entry came in as an OTLP log record rather than a line of a tailed file (the
    collector's file_log receiver sets the attribute log.file.name, stored as log_file_name)."""
    return "log_file_name" not in metadata and bool(OTLP_RECORD_KEYS & metadata.keys())


def otlp_fields(entry: Entry, service_label: str = SERVICE_LABEL) -> dict[str, Any]:
    """An OTLP record's own fields under the contract's keys (ts, level, msg, service, ids)."""
    meta = entry.metadata
    fields: dict[str, Any] = {
        k: v for k, v in meta.items() if k not in BOOKKEEPING and k != service_label
    }
    fields.update(
        ts=rfc3339(entry.ns / 1e9),
        msg=entry.line,
        service=entry.labels.get(service_label) or meta.get(service_label, ""),
        trace_id=meta.get("trace_id", ""),
        span_id=meta.get("span_id", ""),
    )
    level = otlp_level(meta.get("severity_text"), meta.get("severity_number"))
    if level:
        fields["level"] = level
    return fields


def read_entry(entry: Entry, service_label: str = SERVICE_LABEL) -> LogLine:
    """A JSON line is read as written; an OTLP record whose body is not one, from its own
    fields (folded labels hold a JSON line's parsed keys too, so the line is looked at first)."""
    line = parse_line(entry.line, entry.ns / 1e9)
    if line.fields is None and is_otlp_record(entry.metadata):
        fields = otlp_fields(entry, service_label)
        return LogLine(json.dumps(fields), fields, line.time)
    return line


def _entries(data: dict[str, Any]) -> list[Entry]:
    """The entries of a `streams` answer, categorized or not."""
    categorized = CATEGORIZE in (data.get("encodingFlags") or [])
    result = []
    for stream in data.get("result", []):
        labels = stream.get("stream", {})
        for value in stream.get("values", []):
            ns, line = int(value[0]), value[1]
            if categorized:
                extra = value[2] if len(value) > 2 else {}
                metadata = extra.get("structuredMetadata") or {}
            else:  # folded into the stream's labels (with the index and parsed labels)
                metadata = labels
            result.append(Entry(ns, line, labels, metadata))
    return result


def _ns(epoch: float) -> int:
    """Unix nanoseconds, exact to the microsecond (a float holds no more at today's epoch)."""
    return round(epoch * 1e6) * 1000


class Loki:
    role: ClassVar[str] = "logs"
    kind: ClassVar[str] = "loki"
    language: ClassVar[str] = "LogQL"
    options: ClassVar[dict[str, str]] = {
        "tenant": "X-Scope-OrgID of a multi-tenant Loki",
        "service_label": f"the stream label naming the service (default {SERVICE_LABEL})",
    }

    def __init__(
        self,
        url: str,
        tenant: str | None = None,
        service_label: str = SERVICE_LABEL,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = url.rstrip("/")
        self.service_label = service_label
        self.ready_url = f"{self.base_url}/ready"
        headers = {"X-Loki-Response-Encoding-Flags": CATEGORIZE}
        if tenant:
            headers["X-Scope-OrgID"] = tenant
        self._http = httpx.Client(timeout=timeout, headers=headers)

    def _queries(self, service: str, equals: dict[str, str]) -> list[str]:
        """The LogQL queries whose entries together are the answer: the selector alone, or, with
        field equality, the JSON lines' form and the structured metadata's."""
        selector = f"{{{self.service_label}={json.dumps(service)}}}"
        if not equals:
            return [selector]
        filters = "".join(f" | {key}={json.dumps(value)}" for key, value in equals.items())
        lines = "".join(f" |= {json.dumps(value)}" for value in equals.values())
        return [f"{selector}{lines} | json{filters}", f"{selector}{filters}"]

    def query_text(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> str:
        """LogQL (the window travels as `start`/`end`, not in the query); with field equality,
        the two queries whose entries are taken, one per line."""
        return "\n".join(self._queries(service, equals))

    def _window(self, since: float | None, until: float | None) -> tuple[int, int]:
        end = until if until is not None else time.time() + 1
        return _ns(since if since is not None else end - FAR_PAST_S), _ns(end)

    def _data(self, path: str, params: dict[str, str], what: str) -> dict[str, Any]:
        body = get_json(self._http, f"{self.base_url}{path}", what, params=params)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise BackendError(f"{what}: unexpected answer {str(body)[:300]}")
        data: dict[str, Any] = body["data"]
        return data

    def _read(self, query: str, start: int, end: int) -> list[Entry]:
        """Every entry of one query in [start, end]: forward pages of PAGE entries, each
        starting after the last one seen."""
        result: list[Entry] = []
        while True:
            params = {
                "query": query,
                "start": str(start),
                "end": str(end),
                "limit": str(PAGE),
                "direction": "forward",
            }
            page = _entries(self._data("/loki/api/v1/query_range", params, f"LogQL {query!r}"))
            result += page
            if len(page) < PAGE:
                return result
            start = max(entry.ns for entry in page) + 1

    def lines(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> list[LogLine]:
        start, end = self._window(since, until)
        seen: dict[tuple[int, str], Entry] = {}
        for query in self._queries(service, equals):
            for entry in self._read(query, start, end):
                seen.setdefault((entry.ns, entry.line), entry)
        result = [read_entry(entry, self.service_label) for entry in seen.values()]
        return sorted(result, key=lambda line: line.time)

    def count(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> int:
        """The lines counted one by one (exact; a `count_over_time` vector rounds its window)."""
        return len(self.lines(service, since, until, **equals))

    def close(self) -> None:
        self._http.close()


ADAPTER = Loki
