"""The log store protocol: what the LOG checks ask of any log store, whichever product it is.

A check asks for the lines one service wrote, optionally in a time window and with field
equality (`trace_id="…"`), or for their number, and shows the query it ran in the store's own
language. Each adapter module (`victorialogs`, `loki`, …) implements this for one product;
`obsconf.conformance.clients.registry` picks one by the target's `backends.logs.kind`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class LogLine:
    raw: str  # the line as written
    fields: dict[str, Any] | None  # parsed JSON object, None if the line is not one
    time: float  # epoch seconds the store stamped on it

    def get(self, key: str, default: Any = None) -> Any:
        return (self.fields or {}).get(key, default)


def parse_line(raw: str, time: float) -> LogLine:
    """A stored line: its JSON object when it is one, else `fields=None`."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    return LogLine(raw, parsed if isinstance(parsed, dict) else None, time)


SEVERITY_RANGES = ("trace", "debug", "info", "warn", "error", "fatal")  # numbers 1-4, 5-8, …


def otlp_level(text: Any, number: Any) -> str:
    """An OTLP log record's level: its severity text, else the range its number falls in (the
    OTLP data model's SeverityNumber ranges), else ""."""
    level = str(text or "").lower()
    if level in ("", "unspecified"):
        value = int(number or 0)
        level = SEVERITY_RANGES[(value - 1) // 4] if 1 <= value <= 24 else ""
    return level


class LogStore(Protocol):
    """A log store as the checks use it. `equals` filters on the lines' JSON fields."""

    role: ClassVar[str]  # "logs"
    kind: ClassVar[str]  # the target's backends.logs.kind
    language: ClassVar[str]  # name of the query language shown in evidence ("LogsQL")
    options: ClassVar[dict[str, str]]  # option name -> what it sets (target fields)
    ready_url: str  # answers < 500 when the store serves queries

    def query_text(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> str:
        """The query `lines` runs, in the store's language, for evidence and messages."""
        ...

    def lines(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> list[LogLine]:
        """The lines `service` wrote, oldest first, filtered by window and field equality."""
        ...

    def count(
        self, service: str, since: float | None = None, until: float | None = None, **equals: str
    ) -> int:
        """How many lines `lines` would return (counted by the store, without a limit)."""
        ...

    def close(self) -> None: ...
