"""VictoriaLogs adapter (kind `victorialogs`): the LogsQL query API, `/select/logsql/query`.

Services log one JSON object per line; the log path stores each line with a stream field set
to the service name (`app_name` from rsyslog, the default; `service.name` from the OpenTelemetry
Collector, a stack's `log_stream_field`) and the JSON line as the message. So
`app_name:="user-service" "…" | unpack_json | filter trace_id:="…"` is the LogsQL equivalent of
the LogQL `{service_name="user-service"} |= "…" | json | trace_id="…"` (the bare phrase
narrows the scan to lines containing the value before they are unpacked).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

import httpx

from conformance.clients.errors import BackendError, BackendUnreachable
from conformance.clients.logs import LogLine, parse_line

STREAM_FIELD = "app_name"


def _quote(value: str) -> str:
    return json.dumps(value)


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat()


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
        field = self.stream_field
        query = f"{field if field.isidentifier() else _quote(field)}:={_quote(service)}"
        if since is not None or until is not None:
            start = _rfc3339(since) if since is not None else "-inf"
            end = _rfc3339(until) if until is not None else "now"
            query += f" _time:[{start}, {end}]"
        for value in equals.values():
            query += f" {_quote(value)}"
        if equals:
            query += " | unpack_json"
            for key, value in equals.items():
                query += f" | filter {key}:={_quote(value)}"
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
            result.append(parse_line(entry.get("_msg", ""), stamp))
        return sorted(result, key=lambda line: line.time)

    def close(self) -> None:
        self._http.close()


ADAPTER = VictoriaLogs
