"""Jaeger adapter (kind `jaeger`): Jaeger v2's query API `/api/v3` (OTLP JSON under `result`)."""

from __future__ import annotations

from typing import ClassVar

import httpx

from obsconf.conformance.clients.errors import BackendError, BackendUnreachable
from obsconf.conformance.clients.traces import TraceNotFound
from obsconf.conformance.timefmt import rfc3339
from obsconf.conformance.traces.model import Span, parse_otlp_json


class Jaeger:
    role: ClassVar[str] = "traces"
    kind: ClassVar[str] = "jaeger"
    options: ClassVar[dict[str, str]] = {}

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.base_url = url.rstrip("/")
        self.ready_url = f"{self.base_url}/api/services"
        self._http = httpx.Client(timeout=timeout)

    def trace_url(self, trace_id: str) -> str:
        return f"{self.base_url}/api/v3/traces/{trace_id}"

    def trace(self, trace_id: str) -> list[Span]:
        url = self.trace_url(trace_id)
        try:
            response = self._http.get(url)
        except httpx.TransportError as error:
            raise BackendUnreachable(f"trace {trace_id}: cannot reach {url}: {error}") from error
        if response.status_code == 404:
            raise TraceNotFound(f"trace {trace_id} not found at {url}")
        if response.status_code != 200:
            raise BackendError(
                f"trace {trace_id}: {url} answered {response.status_code}: {response.text[:500]}"
            )
        body = response.json()
        spans = parse_otlp_json(body.get("result", body))
        if not spans:
            raise TraceNotFound(f"trace {trace_id} not found at {url} (empty result)")
        return spans

    def search(
        self, service: str, since: float, until: float, limit: int = 100
    ) -> dict[str, list[Span]]:
        url = f"{self.base_url}/api/v3/traces"
        params = {
            "query.service_name": service,
            "query.start_time_min": rfc3339(since),
            "query.start_time_max": rfc3339(until),
            "query.num_traces": str(limit),
            "query.search_depth": str(limit),
        }
        try:
            response = self._http.get(url, params=params)
        except httpx.TransportError as error:
            raise BackendUnreachable(f"trace search: cannot reach {url}: {error}") from error
        if response.status_code == 404:
            return {}
        if response.status_code != 200:
            raise BackendError(
                f"trace search {params}: {url} answered {response.status_code}: "
                f"{response.text[:500]}"
            )
        found: dict[str, list[Span]] = {}
        for span in parse_otlp_json(response.json().get("result", {})):
            found.setdefault(span.trace_id, []).append(span)
        return found

    def close(self) -> None:
        self._http.close()


ADAPTER = Jaeger
