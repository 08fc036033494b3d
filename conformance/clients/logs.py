"""Log store client: VictoriaLogs' LogsQL query API.

Services log one JSON object per line; the shipper forwards each line with the stream field
`app_name` set to the service name, and the JSON stays in `_msg`. `lines()` unpacks it, so
callers see each log line as the dict the service wrote.
"""

from __future__ import annotations

import json

import httpx

from conformance.clients.errors import BackendError, BackendUnreachable

STREAM_FIELD = "app_name"


def _quote(value: str) -> str:
    return json.dumps(value)


class LogsClient:
    def __init__(self, base_url: str, stream_field: str = STREAM_FIELD, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.stream_field = stream_field
        self._http = httpx.Client(timeout=timeout)

    def selector(self, service: str, **equals: str) -> str:
        """LogsQL selecting one service's lines whose JSON fields equal the given values."""
        query = f"{self.stream_field}:={_quote(service)}"
        if equals:
            query += " | unpack_json"
            for key, value in equals.items():
                query += f" | filter {key}:={_quote(value)}"
        return query

    def query(self, logsql: str, limit: int = 10000) -> list[dict]:
        """Raw LogsQL query: one dict per matching entry (VictoriaLogs fields)."""
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

    def lines(self, service: str, **equals: str) -> list[dict]:
        """The JSON log lines `service` wrote (as it wrote them), filtered by field equality."""
        entries = self.query(self.selector(service, **equals))
        result = []
        for entry in entries:
            try:
                line = json.loads(entry.get("_msg", ""))
            except ValueError:
                line = {"_unparsed": entry.get("_msg", "")}
            result.append(line if isinstance(line, dict) else {"_unparsed": line})
        return result

    def close(self) -> None:
        self._http.close()
