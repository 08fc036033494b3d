"""MET-DURATION-UNIT's arithmetic: client latencies per route, the ceiling and the floor."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from obsconf.conformance.metrics import (
    client_latencies,
    duration_ceiling,
    duration_excesses,
    duration_floor,
)

CREATE = ("POST", "/api/users", "201")
READ = ("GET", "/api/users/{id}", "404")


def _call(role: str, method: str, route: str, status: int, started: float, ended: float):
    return SimpleNamespace(
        role=role, method=method, route=route, status=status, started=started, ended=ended
    )


def test_client_latencies_sum_per_route_of_the_role() -> None:
    calls = [
        _call("user", "POST", "/api/users", 201, 10.0, 10.02),
        _call("user", "POST", "/api/users", 201, 11.0, 11.03),
        _call("user", "GET", "/api/users/{id}", 404, 12.0, 12.005),
        _call("order", "GET", "/api/orders/{id}", 404, 13.0, 13.5),
    ]
    seen = client_latencies(calls, "user")
    assert set(seen) == {CREATE, READ}
    assert abs(seen[CREATE] - 0.05) < 1e-9
    assert abs(seen[READ] - 0.005) < 1e-9


def test_seconds_within_the_client_latency_pass() -> None:
    client = Counter({CREATE: 0.05, READ: 0.005})
    server = Counter({CREATE: 0.04, READ: 0.004})
    assert duration_excesses(server, client) == []


def test_a_late_server_clock_is_tolerated() -> None:
    client = Counter({READ: 0.005})
    assert duration_excesses(Counter({READ: 0.2}), client) == []
    assert duration_ceiling(0.005) < 0.3


def test_milliseconds_exceed_the_ceiling_per_route_and_in_total() -> None:
    client = Counter({CREATE: 0.05, READ: 0.005})
    server = Counter({CREATE: 40.0, READ: 4.0})
    excesses = duration_excesses(server, client)
    assert [what for what, _, _ in excesses] == [
        "GET /api/users/{id} 404",
        "POST /api/users 201",
        "all routes",
    ]
    assert excesses[-1][1:] == (44.0, sum(client.values()))


def test_routes_the_server_labelled_otherwise_count_in_the_total_only() -> None:
    client = Counter({READ: 0.005})
    server = Counter({("GET", "/api/users/999", "404"): 4.0})
    assert [what for what, _, _ in duration_excesses(server, client)] == ["all routes"]


def test_the_floor_separates_seconds_from_a_thousandth_of_them() -> None:
    client_total = 0.2
    assert duration_floor(client_total) < client_total * 0.02  # a server doing 2 % of the wait
    assert duration_floor(client_total) > client_total / 1000  # seconds / 1000
