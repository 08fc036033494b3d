"""Trace store client: Jaeger's query API (v3, OTLP JSON), parsed into the span model."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from obsconf.conformance.clients.errors import BackendError, BackendUnreachable
from obsconf.conformance.traces.model import Span, parse_otlp_json


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


class TraceNotFound(BackendError):
    """The trace store has no trace with that id (yet)."""


class TracesClient:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def trace_url(self, trace_id: str) -> str:
        return f"{self.base_url}/api/v3/traces/{trace_id}"

    def trace(self, trace_id: str) -> list[Span]:
        """All spans of one trace; TraceNotFound when the store has none."""
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
        """Traces with spans of `service` starting in [since, until] (epoch s), by trace id."""
        url = f"{self.base_url}/api/v3/traces"
        params = {
            "query.service_name": service,
            "query.start_time_min": _rfc3339(since),
            "query.start_time_max": _rfc3339(until),
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

    def services(self) -> list[str]:
        url = f"{self.base_url}/api/services"
        try:
            response = self._http.get(url)
        except httpx.TransportError as error:
            raise BackendUnreachable(f"services: cannot reach {url}: {error}") from error
        return list(response.json().get("data") or [])

    def close(self) -> None:
        self._http.close()
