"""Loki adapter (kind `loki`): LogQL over Loki's HTTP query API.

Built from Grafana Loki's published HTTP API reference ("Query logs within a range of time":
`GET /loki/api/v1/query_range`; "Readiness probe": `GET /ready`), never run here (Loki is AGPL). A
service's lines are the stream `{service_name="…"}` (the label Loki 3 derives from `service`,
`app`, … or OTLP's `service.name`; `service_label` names another); field equality is
`|= "value" | json | field="value"`. Times are Unix nanoseconds; results are `streams`, each
with `values` of `[ns-string, line]` pairs, read forward in pages of `limit` entries.
`tenant` sets the `X-Scope-OrgID` header of a multi-tenant Loki.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

import httpx

from obsconf.conformance.clients.errors import BackendError, get_json
from obsconf.conformance.clients.logs import LogLine, parse_line

SERVICE_LABEL = "service_name"
PAGE = 5000  # Loki's default max_entries_limit_per_query
FAR_PAST_S = 30 * 24 * 3600  # window start when none is given (Loki needs one)


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
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)

    def query_text(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> str:
        """LogQL (the window travels as `start`/`end`, not in the query)."""
        query = f"{{{self.service_label}={json.dumps(service)}}}"
        for value in equals.values():
            query += f" |= {json.dumps(value)}"
        if equals:
            query += " | json"
            for key, value in equals.items():
                query += f" | {key}={json.dumps(value)}"
        return query

    def _window(self, since: float | None, until: float | None) -> tuple[int, int]:
        end = until if until is not None else time.time() + 1
        return _ns(since if since is not None else end - FAR_PAST_S), _ns(end)

    def _data(self, path: str, params: dict[str, str], what: str) -> dict[str, Any]:
        body = get_json(self._http, f"{self.base_url}{path}", what, params=params)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise BackendError(f"{what}: unexpected answer {str(body)[:300]}")
        return body["data"]

    def lines(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> list[LogLine]:
        query = self.query_text(service, **equals)
        start, end = self._window(since, until)
        result: list[LogLine] = []
        while True:  # forward pages of PAGE entries, each starting after the last one seen
            params = {
                "query": query,
                "start": str(start),
                "end": str(end),
                "limit": str(PAGE),
                "direction": "forward",
            }
            data = self._data("/loki/api/v1/query_range", params, f"LogQL {query!r}")
            page = [
                (int(ns), line)
                for stream in data.get("result", [])
                for ns, line in stream.get("values", [])
            ]
            result += [parse_line(line, ns / 1e9) for ns, line in page]
            if len(page) < PAGE:
                break
            start = max(ns for ns, _ in page) + 1
        return sorted(result, key=lambda line: line.time)

    def count(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> int:
        """The lines counted one by one (exact; a `count_over_time` vector rounds its window)."""
        return len(self.lines(service, since, until, **equals))

    def close(self) -> None:
        self._http.close()


ADAPTER = Loki
