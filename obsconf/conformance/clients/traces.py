"""The trace store protocol: what the trace checks ask of any trace store.

A check asks for one trace by id (all its spans) or for the traces with spans of one service
in a time window. Each adapter module (`jaeger`, `tempo`, …) implements this for one product;
`obsconf.conformance.clients.registry` picks one by the target's `backends.traces.kind`.
"""

from __future__ import annotations

from typing import ClassVar, Protocol

from obsconf.conformance.clients.errors import BackendError
from obsconf.conformance.traces.model import Span


class TraceNotFound(BackendError):
    """The trace store has no trace with that id (yet)."""


class TraceStore(Protocol):
    role: ClassVar[str]  # "traces"
    kind: ClassVar[str]  # the target's backends.traces.kind
    options: ClassVar[dict[str, str]]
    ready_url: str

    def trace_url(self, trace_id: str) -> str:
        """Where `trace` fetches the trace (shown in evidence and messages)."""
        ...

    def trace(self, trace_id: str) -> list[Span]:
        """All spans of one trace; TraceNotFound when the store has none."""
        ...

    def search(
        self, service: str, since: float, until: float, limit: int = 100
    ) -> dict[str, list[Span]]:
        """Traces with spans of `service` starting in [since, until] (epoch s), by trace id."""
        ...

    def close(self) -> None: ...


def search_window(
    store: TraceStore, service: str, since: float, until: float, page: int = 200
) -> dict[str, list[Span]]:
    """Every trace `store.search` finds in [since, until], however many: a search answers at
    most `page` traces and has no cursor, so a full page is split in two windows."""
    found = store.search(service, since, until, limit=page)
    if len(found) < page or until - since < 0.001:
        return found
    middle = (since + until) / 2
    return {
        **search_window(store, service, since, middle, page),
        **search_window(store, service, middle, until, page),
    }
