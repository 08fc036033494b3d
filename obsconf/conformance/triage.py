"""Never blame the implementation for the harness's trouble.

When a check of a guarantee fails, the plugin asks `Triage.verdict` whether the harness's own
backends were in the way before it records a FAIL: every backend the system reads (Prometheus,
the log store, the trace store) is probed at its readiness URL with a short timeout, and the
failure's exception chain is searched for a `BackendUnreachable` (a query nothing answered).
Either way the guarantee could not be judged: it is recorded INCOMPLETE (never FAIL) with a
message naming the backend, its URL and what failed, followed by the check's own message for
context. A backend that answers, however wrong its answer, leaves the failure as it is: a
`BackendError` that is not `BackendUnreachable` (a refused query, a `TraceNotFound`) may be the
implementation's doing.

A probe's answer is kept for `ttl` seconds, so a dozen checks failing in a row on a frozen
store cost one probe each (not a dozen each).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from obsconf.conformance.clients.errors import BackendUnreachable

if TYPE_CHECKING:
    from obsconf.conformance.system import System

PROBE_TIMEOUT_S = 2.0
PROBE_TTL_S = 1.0


@dataclass(frozen=True)
class Backend:
    """One backend of the harness, as a message names it."""

    name: str  # "the log store (victorialogs)"
    url: str  # its base URL
    ready_url: str  # answers < 500 when it serves queries


def backends_of(system: System) -> tuple[Backend, ...]:
    """The backends `system`'s checks read."""
    prometheus = system.prometheus.base_url
    found = [Backend("Prometheus", prometheus, f"{prometheus}/-/ready")]
    for what, store in (("the log store", system.logs), ("the trace store", system.traces)):
        base = str(getattr(store, "base_url", store.ready_url))
        found.append(Backend(f"{what} ({store.kind})", base, store.ready_url))
    return tuple(found)


Get = Callable[[str, float], httpx.Response]


def _get(url: str, timeout: float) -> httpx.Response:
    return httpx.get(url, timeout=timeout)


class Triage:
    """Probes backends (each answer kept `ttl` seconds) and judges a failure by them."""

    def __init__(
        self,
        backends: Sequence[Backend],
        timeout: float = PROBE_TIMEOUT_S,
        ttl: float = PROBE_TTL_S,
        get: Get = _get,
    ) -> None:
        self.backends = tuple(backends)
        self.timeout = timeout
        self.ttl = ttl
        self._get = get
        self._cache: dict[str, tuple[float, str | None]] = {}  # ready_url -> (when, problem)
        self._lock = threading.Lock()
        self.probes = 0  # how many probes were sent (the cache's effect, for tests)

    def problem(self, backend: Backend) -> str | None:
        """What is wrong with `backend` now ("did not answer … within 2 s"), None if it is
        ready."""
        with self._lock:
            cached = self._cache.get(backend.ready_url)
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            self.probes += 1
        found = self._probe(backend)
        with self._lock:
            self._cache[backend.ready_url] = (time.monotonic(), found)
        return found

    def _probe(self, backend: Backend) -> str | None:
        where = f"{backend.name} at {backend.url}"
        try:
            response = self._get(backend.ready_url, self.timeout)
        except httpx.TimeoutException:
            return f"{where} did not answer GET {backend.ready_url} within {self.timeout:g} s"
        except httpx.TransportError as error:
            return f"{where} could not be reached (GET {backend.ready_url}: {error})"
        if response.status_code >= 500:
            return (
                f"{where} answered GET {backend.ready_url} with {response.status_code}: "
                f"{response.text[:200]}"
            )
        return None

    def problems(self) -> list[str]:
        """What is wrong with every backend now (probed at once)."""
        if not self.backends:
            return []
        with ThreadPoolExecutor(max_workers=len(self.backends)) as pool:
            return [p for p in pool.map(self.problem, self.backends) if p]

    def verdict(self, error: BaseException | None, message: str) -> str | None:
        """The INCOMPLETE message for a check that failed with `error` and `message`, or None
        when the failure stands (every backend answers and none went unanswered)."""
        causes = self.problems()
        if not causes:
            unreachable = next(
                (e for e in _chain(error) if isinstance(e, BackendUnreachable)), None
            )
            if unreachable is None:
                return None
            causes = [f"a query went unanswered: {unreachable}"]
        head = "; ".join(causes)
        return (
            f"could not be judged, a backend of the harness did not answer: {head}\n"
            f"(not the implementation's failure; the check said: {message})"
        )


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error` and its causes and contexts, each once."""
    seen: set[int] = set()
    todo = [error] if error is not None else []
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            todo += list(current.exceptions)
