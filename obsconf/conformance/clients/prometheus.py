"""Prometheus HTTP API: instant and range PromQL queries, target health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from obsconf.conformance.clients.errors import BackendError, get_json


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


class PrometheusClient:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def _api(self, path: str, params: dict[str, str], what: str) -> object:
        body = get_json(self._http, f"{self.base_url}/api/v1/{path}", what, params=params)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise BackendError(f"{what}: unexpected answer {body!r}")
        return body["data"]

    def query(self, promql: str) -> list[Sample]:
        """Instant vector query; each sample with its labels and value."""
        data = self._api("query", {"query": promql}, f"PromQL {promql!r}")
        assert isinstance(data, dict)
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(r["metric"], float(r["value"][1])) for r in data["result"]]

    def value(self, promql: str) -> float | None:
        """The single value of a query that yields at most one sample (None when empty)."""
        samples = self.query(promql)
        if len(samples) > 1:
            raise BackendError(f"PromQL {promql!r} returned {len(samples)} series, expected one")
        return samples[0].value if samples else None

    def scrape_times(self, job: str, window_s: int = 900) -> list[float]:
        """Epoch times of the job's successful scrapes in the last `window_s` seconds."""
        promql = f'up{{job="{job}"}}[{window_s}s]'
        data = self._api("query", {"query": promql}, f"PromQL {promql!r}")
        assert isinstance(data, dict)
        return sorted(float(t) for r in data["result"] for t, v in r["values"] if float(v) == 1)

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their health."""
        data = self._api("targets", {"state": "active"}, "targets")
        assert isinstance(data, dict)
        return list(data["activeTargets"])

    def close(self) -> None:
        self._http.close()
