"""Tempo adapter (kind `tempo`): Tempo's HTTP query API.

Built from Grafana Tempo's published HTTP API reference ("Query V2": `GET
/api/v2/traces/<traceID>` answering `{"trace": {"resourceSpans": […]}}`; "Query": `GET
/api/traces/<traceID>` answering `{"batches": […]}` on Tempo before 2.7, chosen with
`api: v1`; "Search" with TraceQL: `GET /api/search?q=…&start=…&end=…&limit=…` answering
`{"traces": [{"traceID": …}]}`; "Readiness probe": `GET /ready`), never run here (Tempo is
AGPL). Ids may come base64-encoded and kinds as `SPAN_KIND_…` strings; the span model
parses both. Search gives trace ids only, so each found trace is fetched by id.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx

from obsconf.conformance.clients.errors import BackendError, BackendUnreachable
from obsconf.conformance.clients.traces import TraceNotFound
from obsconf.conformance.traces.model import Span, parse_otlp_json

PATHS = {"v2": "/api/v2/traces/", "v1": "/api/traces/"}


class Tempo:
    role: ClassVar[str] = "traces"
    kind: ClassVar[str] = "tempo"
    options: ClassVar[dict[str, str]] = {
        "tenant": "X-Scope-OrgID of a multi-tenant Tempo",
        "api": "v2 (default, Tempo 2.7+) or v1 (`/api/traces/<id>`, `batches`)",
    }
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"api": tuple(PATHS)}

    def __init__(
        self, url: str, tenant: str | None = None, api: str = "v2", timeout: float = 5.0
    ) -> None:
        if api not in PATHS:
            raise ValueError(f"backends.traces.api: must be one of v1, v2, got {api!r}")
        self.base_url = url.rstrip("/")
        self.api = api
        self.ready_url = f"{self.base_url}/ready"
        headers = {"X-Scope-OrgID": tenant} if tenant else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)

    def trace_url(self, trace_id: str) -> str:
        return f"{self.base_url}{PATHS[self.api]}{trace_id}"

    def _get(self, url: str, what: str, params: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = self._http.get(url, params=params)
        except httpx.TransportError as error:
            raise BackendUnreachable(f"{what}: cannot reach {url}: {error}") from error
        if response.status_code not in (200, 404):
            raise BackendError(
                f"{what}: {url} answered {response.status_code}: {response.text[:500]}"
            )
        return response

    def trace(self, trace_id: str) -> list[Span]:
        url = self.trace_url(trace_id)
        response = self._get(url, f"trace {trace_id}")
        if response.status_code == 404:
            raise TraceNotFound(f"trace {trace_id} not found at {url}")
        body: dict[str, Any] = response.json()
        spans = parse_otlp_json(body.get("trace", body))
        if not spans:
            raise TraceNotFound(f"trace {trace_id} not found at {url} (empty result)")
        return spans

    def search(
        self, service: str, since: float, until: float, limit: int = 100
    ) -> dict[str, list[Span]]:
        url = f"{self.base_url}/api/search"
        params = {
            "q": f"{{resource.service.name={json.dumps(service)}}}",
            "start": str(int(since)),
            "end": str(int(until) + 1),
            "limit": str(limit),
        }
        response = self._get(url, f"trace search {params}", params)
        if response.status_code == 404:
            return {}
        found: dict[str, list[Span]] = {}
        for hit in response.json().get("traces") or []:
            trace_id = str(hit["traceID"]).lower().rjust(32, "0")  # Tempo drops leading zeros
            try:
                found[trace_id] = self.trace(trace_id)
            except TraceNotFound:
                continue
        return found

    def close(self) -> None:
        self._http.close()


ADAPTER = Tempo
