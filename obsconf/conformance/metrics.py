"""Metric checks' building blocks: scrape barriers and counter snapshots via PromQL."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from obsconf.conformance.clients.prometheus import PrometheusClient
from obsconf.conformance.driver import Call
from obsconf.conformance.target import Target
from obsconf.stack.waiting import poll

Key = tuple[str, ...]


def selector(target: Target, metric: str, service: str, **labels: str) -> str:
    """`metric{service="…", …}` with the target's own label names (labels use the role names
    `method`, `route`, `status`, mapped through `target.labels`)."""
    names = target.labels
    parts = [f'{names["service"]}="{service}"']
    parts += [f'{names.get(key, key)}="{value}"' for key, value in labels.items()]
    return f"{metric}{{{','.join(parts)}}}"


def await_scrape_after(prom: PrometheusClient, job: str, after: float, timeout: float = 15) -> None:
    """Block until Prometheus has scraped job `job` (the service name) successfully after
    `after` (epoch s). Only a successful scrape counts: until Prometheus re-reads its targets,
    it keeps scraping a target of the same job that is gone (a previous run's service on
    another port; measured: 6 of 40 runs on a shared stack read an unchanged counter behind
    such a failed scrape)."""
    up = f'up{{job="{job}"}}'
    # timestamp() gives sample times only of a plain selector (of `up == 1`, the query time)
    expr = f"max(timestamp({up}) and on (instance, job) {up} == 1)"
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


def expected_requests(calls: Iterable[Call], role: str | None = None) -> Counter[Key]:
    """What a correct request counter gains from these driver calls (of `role`, if given),
    keyed by (method, route, status)."""
    return Counter(
        (c.method, c.route, str(c.status)) for c in calls if role is None or c.role == role
    )


# MET-DURATION-UNIT: how far a server's observed durations may stray from the client's.
DURATION_SLACK_RATIO = 0.10  # the server's clock may stop a little after the client's ...
DURATION_SLACK_S = 0.25  # ... and a descheduled server on a busy machine stops it late
MIN_SERVER_SHARE = 1 / 200  # over a round, server time is at least this share of client time


def client_latencies(calls: Iterable[Call], role: str | None = None) -> Counter[Key]:
    """Seconds the client waited for these driver calls (of `role`, if given), summed per
    (method, route, status) — the keys of `expected_requests`."""
    total: defaultdict[Key, float] = defaultdict(float)
    for c in calls:
        if role is None or c.role == role:
            total[(c.method, c.route, str(c.status))] += c.ended - c.started
    return Counter(total)  # of seconds: typeshed's Counter holds ints, these Counters floats


def duration_ceiling(client_seconds: float) -> float:
    """The most a server may observe for requests its client timed at `client_seconds`."""
    return client_seconds * (1 + DURATION_SLACK_RATIO) + DURATION_SLACK_S


def duration_floor(client_seconds: float) -> float:
    """The least a server may observe, over a round, for requests timed at `client_seconds`."""
    return client_seconds * MIN_SERVER_SHARE


def duration_excesses(server: Counter[Key], client: Counter[Key]) -> list[tuple[str, float, float]]:
    """(what, server seconds, client seconds) for each route the server labels as the client
    sent it, and for all routes together, where the server observed more than the ceiling.
    The total also covers requests the server labelled differently (other guarantees judge
    labels; this one judges the unit)."""
    rows = [(" ".join(k), server[k], client[k]) for k in sorted(client) if k in server]
    rows.append(("all routes", sum(server.values()), sum(client.values())))
    return [row for row in rows if row[1] > duration_ceiling(row[2])]


def format_seconds(seconds: Counter[Key]) -> str:
    if not seconds:
        return "(none)"
    return ", ".join(f"{' '.join(k)}: {v:.4f} s" for k, v in sorted(seconds.items()))


def format_counts(counts: Counter[Key]) -> str:
    if not counts:
        return "(none)"
    return ", ".join(f"{'/'.join(k)}: {v:g}" for k, v in sorted(counts.items()))
