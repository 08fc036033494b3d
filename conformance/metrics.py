"""Metric checks' building blocks: scrape barriers and counter snapshots via PromQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from conformance.clients.prometheus import PrometheusClient
from conformance.target import Target
from stack.waiting import poll

Key = tuple[str, ...]


def selector(target: Target, metric: str, service: str, **labels: str) -> str:
    """`metric{service="…", …}` with the target's own label names (labels use the role names
    `method`, `route`, `status`, mapped through `target.labels`)."""
    names = target.labels
    parts = [f'{names["service"]}="{service}"']
    parts += [f'{names.get(key, key)}="{value}"' for key, value in labels.items()]
    return f"{metric}{{{','.join(parts)}}}"


def await_scrape_after(prom: PrometheusClient, job: str, after: float, timeout: float = 15):
    """Block until Prometheus has scraped job `job` (the service name) after `after` (epoch s)."""
    expr = f'max(timestamp(up{{job="{job}"}}))'
    poll(
        lambda: prom.value(expr),
        until=lambda ts: ts is not None and ts > after,
        timeout=timeout,
        describe=f"a scrape newer than {after:.3f} ({expr})",
    )


def snapshot(prom: PrometheusClient, expr: str, by: Sequence[str]) -> Counter[Key]:
    """`sum by (labels) (expr)` as a Counter keyed by the label values."""
    query = f"sum by ({', '.join(by)}) ({expr})"
    return Counter({tuple(s.labels.get(k, "") for k in by): s.value for s in prom.query(query)})


def delta(before: Counter[Key], after: Counter[Key]) -> Counter[Key]:
    """Per-key increase (keys whose value did not change are left out)."""
    keys = set(before) | set(after)
    return Counter(
        {k: after.get(k, 0) - before.get(k, 0) for k in keys if after.get(k, 0) != before.get(k, 0)}
    )


def expected_requests(calls: Iterable, role: str | None = None) -> Counter[Key]:
    """What a correct request counter gains from these driver calls (of `role`, if given),
    keyed by (method, route, status)."""
    return Counter(
        (c.method, c.route, str(c.status)) for c in calls if role is None or c.role == role
    )


def format_counts(counts: Counter[Key]) -> str:
    if not counts:
        return "(none)"
    return ", ".join(f"{'/'.join(k)}: {v:g}" for k, v in sorted(counts.items()))
