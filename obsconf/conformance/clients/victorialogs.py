"""VictoriaLogs adapter (kind `victorialogs`): the LogsQL query API, `/select/logsql/query`.

Services log one JSON object per line; the log path (the OpenTelemetry Collector) stores each
line with the resource attribute `service.name` set to the service name, a stream field in
VictoriaLogs (`stream_field` names another, for a log path of the user's own), and the JSON line
as the message. So `"service.name":="user-service" (trace_id:="…" or "…") | unpack_json
keep_original_fields | filter trace_id:="…"` is the LogsQL equivalent of the LogQL
`{service_name="user-service"} |= "…" | json | trace_id="…"` (the first filter narrows the scan
to entries holding the value as a field, as the collector's parsed attributes and OTLP records
do, or in the line, before lines are unpacked; a field the entry already has wins over the
line's).

A record that arrived over OTLP (not from a tailed file: no `log.file.name`, and the
`scope.name` VictoriaLogs' OpenTelemetry endpoint stores) is read from its own fields: the body
is `msg`, the record's `trace_id`/`span_id` are the ids, `severity_text` the level, the
resource's `service.name` the service and its attributes the other keys.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

import httpx

from obsconf.conformance.clients.errors import BackendError, BackendUnreachable
from obsconf.conformance.clients.logs import LogLine, otlp_level, parse_line
from obsconf.conformance.timefmt import rfc3339

STREAM_FIELD = "service.name"
# Fields VictoriaLogs' OpenTelemetry endpoint adds to every record: not the service's keys.
OTLP_BOOKKEEPING = {"scope.name", "scope.version", "severity_number", "severity_text"}


def is_otlp_record(entry: dict[str, Any]) -> bool:
    """Whether a stored entry came in as an OTLP log record rather than a line of a file."""
    return "scope.name" in entry and "log.file.name" not in entry


def otlp_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """An OTLP record's own fields under the contract's keys (ts, level, msg, service, ids)."""
    fields = {
        k: v
        for k, v in entry.items()
        if not k.startswith("_") and k not in OTLP_BOOKKEEPING and k != "service.name"
    }
    level = otlp_level(entry.get("severity_text"), entry.get("severity_number"))
    fields.update(
        ts=entry["_time"],
        msg=entry.get("_msg", ""),
        service=entry.get("service.name", ""),
        trace_id=entry.get("trace_id", ""),
        span_id=entry.get("span_id", ""),
    )
    if level:
        fields["level"] = level
    return fields


def _quote(value: str) -> str:
    return json.dumps(value)


def _field(name: str) -> str:
    return name if name.isidentifier() else _quote(name)


class VictoriaLogs:
    role: ClassVar[str] = "logs"
    kind: ClassVar[str] = "victorialogs"
    language: ClassVar[str] = "LogsQL"
    options: ClassVar[dict[str, str]] = {
        "stream_field": f"the field naming the service (default {STREAM_FIELD})"
    }

    def __init__(self, url: str, stream_field: str = STREAM_FIELD, timeout: float = 5.0) -> None:
        self.base_url = url.rstrip("/")
        self.stream_field = stream_field
        self.ready_url = f"{self.base_url}/health"
        self._http = httpx.Client(timeout=timeout)

    def query_text(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> str:
        query = f"{_field(self.stream_field)}:={_quote(service)}"
        if since is not None or until is not None:
            start = rfc3339(since) if since is not None else "-inf"
            end = rfc3339(until) if until is not None else "now"
            query += f" _time:[{start}, {end}]"
        for key, value in equals.items():  # the field itself, or a line that mentions it
            query += f" ({_field(key)}:={_quote(value)} or {_quote(value)})"
        if equals:
            query += " | unpack_json keep_original_fields"
            for key, value in equals.items():
                query += f" | filter {_field(key)}:={_quote(value)}"
        return query

    def _query(self, logsql: str, limit: int = 20000) -> list[dict[str, Any]]:
        """One dict per matching entry (the store's fields)."""
        url = f"{self.base_url}/select/logsql/query"
        try:
            response = self._http.post(url, data={"query": logsql, "limit": str(limit)})
        except httpx.TransportError as error:
            raise BackendUnreachable(f"LogsQL {logsql!r}: cannot reach {url}: {error}") from error
        if response.status_code != 200:
            raise BackendError(
                f"LogsQL {logsql!r}: {url} answered {response.status_code}: {response.text[:500]}"
            )
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def count(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> int:
        rows = self._query(f"{self.query_text(service, since, until, **equals)} | stats count() n")
        return int(rows[0]["n"]) if rows else 0

    def lines(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> list[LogLine]:
        result = []
        for entry in self._query(self.query_text(service, since, until, **equals)):
            stamp = datetime.fromisoformat(entry["_time"].replace("Z", "+00:00")).timestamp()
            if is_otlp_record(entry):
                fields = otlp_fields(entry)
                result.append(LogLine(json.dumps(fields), fields, stamp))
            else:
                result.append(parse_line(entry.get("_msg", ""), stamp))
        return sorted(result, key=lambda line: line.time)

    def close(self) -> None:
        self._http.close()


ADAPTER = VictoriaLogs
