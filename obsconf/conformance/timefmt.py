"""The one way the suite writes a timestamp: RFC 3339 in UTC, as the backends' APIs take it."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(epoch: float) -> str:
    """`epoch` (s) as RFC 3339 in UTC: `2026-11-25T19:57:33.830000Z` (no fraction when it is 0).

    Jaeger's `query.start_time_*`, LogsQL's `_time:[…]` and the `ts` the Loki adapter gives an
    OTLP record all use it."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")
