"""Log store client: VictoriaLogs' LogsQL query API.

Services log one JSON object per line; the shipper forwards each line with the stream field
`app_name` set to the service name; the JSON line is the message. So
`app_name:="user-service" "…" | unpack_json | filter trace_id:="…"` is the LogsQL equivalent of
the LogQL `{service="user-service"} | json | trace_id="…"` (the bare phrase narrows the scan
to lines containing the value before they are unpacked). `lines()` returns each line as the service
wrote it (parsed JSON, or None when the line was not JSON) with the store's timestamp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from obsconf.conformance.clients.errors import BackendError, BackendUnreachable

STREAM_FIELD = "app_name"


@dataclass(frozen=True)
class LogLine:
    raw: str  # the line as written
    fields: dict[str, Any] | None  # parsed JSON object, None if the line is not one
    time: float  # epoch seconds the store stamped on it

    def get(self, key: str, default: Any = None) -> Any:
        return (self.fields or {}).get(key, default)


def _quote(value: str) -> str:
    return json.dumps(value)


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat()


class LogsClient:
    def __init__(self, base_url: str, stream_field: str = STREAM_FIELD, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.stream_field = stream_field
        self._http = httpx.Client(timeout=timeout)

    def selector(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> str:
        """LogsQL for one service's lines, optionally in a time window and with field equality."""
        query = f"{self.stream_field}:={_quote(service)}"
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

    def query(self, logsql: str, limit: int = 20000) -> list[dict[str, Any]]:
        """Raw LogsQL query: one dict per matching entry (the store's fields)."""
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

    def count(self, logsql: str) -> int:
        """Number of entries matching a LogsQL filter."""
        rows = self.query(f"{logsql} | stats count() as n")
        return int(rows[0]["n"]) if rows else 0

    def lines(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> list[LogLine]:
        """The lines `service` wrote, oldest first, filtered by window and field equality."""
        result = []
        for entry in self.query(self.selector(service, since, until, **equals)):
            raw = entry.get("_msg", "")
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            stamp = datetime.fromisoformat(entry["_time"].replace("Z", "+00:00")).timestamp()
            result.append(LogLine(raw, parsed if isinstance(parsed, dict) else None, stamp))
        return sorted(result, key=lambda line: line.time)

    def close(self) -> None:
        self._http.close()
