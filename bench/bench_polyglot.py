"""Telemetry on vs off per implementation, side by side from one run: requests/s and CPU/request.

    python bench/bench_polyglot.py [--seconds 3] [--concurrency 8] [--rounds 2] [--json FILE]

One local stack; each row starts one service alone (the harness's start commands, so the native
ones run their cached build: `{build[NAME]}`) and alternates off/on rounds against fresh
processes. "off" is OBSCONF_TELEMETRY=off (no spans exported; logs and metrics stay on), read
the same way by every implementation. A row whose sources are not in this checkout is skipped.
Service CPU per request (the process's own CPU time) is the figure to compare: a row bound by a
backend (the MongoDB-wire server slows as its collections grow) blurs requests/s, not CPU.
Rows: Python and Go `POST /api/inventory`; Python and Rust `POST /api/orders`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from obsconf.conformance.contract import StartCommand, run_values
from obsconf.reference_services.launcher import SPAN_FLUSH_INTERVAL_S
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.local import LocalStack
from obsconf.stack.native import NATIVE
from obsconf.stack.services import PREDEFINED, ServiceProcesses

Body = Callable[[str, int], dict]


def stock(prefix: str, n: int) -> dict:
    return {"sku": f"B{prefix}-{n}", "qty": 1, "warehouse": "bench"}


def order(prefix: str, n: int) -> dict:
    return {"user_id": 1 + n % 1000, "items": [{"sku": f"B{prefix}", "qty": 1}]}


@dataclass(frozen=True)
class Row:
    implementation: str
    role: str
    path: str
    body: Body
    start: StartCommand
    native: str | None = None  # NATIVE key: skipped when its sources are not here

    @property
    def label(self) -> str:
        return f"{self.implementation} POST {self.path}"


def native_start(name: str) -> StartCommand:
    return StartCommand(
        command=(f"{{build[{name}]}}",),
        env={"OTEL_BSP_SCHEDULE_DELAY": "{span_flush_interval_ms}"},
        origin=f"bench {name}",
    )


ROWS = (
    Row("Python", "inventory", "/api/inventory", stock, PREDEFINED["reference"]),
    Row("Go", "inventory", "/api/inventory", stock, native_start("inventory-go"), "inventory-go"),
    Row("Python", "order", "/api/orders", order, PREDEFINED["reference"]),
    Row("Rust", "order", "/api/orders", order, native_start("order-rust"), "order-rust"),
)


async def measure(url: str, body: Body, seconds: float, concurrency: int) -> float:
    """Answered requests (all 201) per second over `seconds` with `concurrency` clients."""
    prefix = uuid.uuid4().hex[:8]
    counter = itertools.count()
    done = 0
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            answer = await http.post(url, json=body(prefix, next(counter)))
            if answer.status_code != 201:
                raise RuntimeError(f"POST {url} answered {answer.status_code}: {answer.text}")
            done += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return done / (time.monotonic() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_figures(
    url: str, body: Body, pid: int, seconds: float, concurrency: int
) -> tuple[float, float]:
    """(requests/s, CPU ms per request of the process `pid`) over `seconds` of load on `url`."""
    cpu = cpu_seconds(pid)
    rps = asyncio.run(measure(url, body, seconds, concurrency))
    return rps, (cpu_seconds(pid) - cpu) * 1000 / (rps * seconds)


def round_figures(
    endpoints: Endpoints, row: Row, telemetry: bool, seconds: float, concurrency: int
) -> tuple[float, float]:
    """(requests/s, service CPU ms per request) of one round against a fresh process."""
    start = row.start.with_env(OBSCONF_TELEMETRY="on" if telemetry else "off")
    name = f"{row.role}-service"
    values = run_values(span_flush_interval=SPAN_FLUSH_INTERVAL_S)  # every row exports as often
    with ServiceProcesses(endpoints, {name: (row.role, start)}, values) as services:
        url = services.urls[name] + row.path
        asyncio.run(measure(url, row.body, 1.0, concurrency))  # warm-up: pools, caches
        pid = services.processes[name].proc.pid
        return load_figures(url, row.body, pid, seconds, concurrency)


def table(results: dict[str, dict[bool, list[tuple[float, float]]]]) -> str:
    """Means over the rounds; CPU per request is the figure a backend-bound row cannot blur."""
    lines = [
        "| implementation, route | off req/s | on req/s | on/off | CPU ms/req off | on | off/on |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, rounds in results.items():
        off, on = (statistics.mean(r for r, _ in rounds[t]) for t in (False, True))
        cpu_off, cpu_on = (statistics.mean(c for _, c in rounds[t]) for t in (False, True))
        lines.append(
            f"| {label} | {off:.1f} | {on:.1f} | {on / off:.3f} | {cpu_off:.2f} | {cpu_on:.2f} "
            f"| {cpu_off / cpu_on:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    rows = [r for r in ROWS if r.native is None or NATIVE[r.native].source_dir.is_dir()]
    for row in ROWS:
        if row not in rows:
            print(f"skipped {row.label}: no sources of {row.native} here", flush=True)
    results: dict[str, dict[bool, list[tuple[float, float]]]] = {
        r.label: {False: [], True: []} for r in rows
    }
    with LocalStack() as stack:
        assert stack.endpoints is not None
        for _ in range(args.rounds):
            for row in rows:
                for telemetry in (False, True):
                    rps, cpu = round_figures(
                        stack.endpoints, row, telemetry, args.seconds, args.concurrency
                    )
                    results[row.label][telemetry].append((rps, cpu))
                    state = "on " if telemetry else "off"
                    print(
                        f"{row.label:<32} telemetry {state}: {rps:8.1f} req/s, "
                        f"{cpu:.2f} ms CPU/request",
                        flush=True,
                    )
    print(table(results))
    if args.json:
        figures = {
            label: {
                state: [{"rps": r, "cpu_ms_per_request": c} for r, c in rounds[telemetry]]
                for state, telemetry in (("off", False), ("on", True))
            }
            for label, rounds in results.items()
        }
        settings = {"seconds": args.seconds, "concurrency": args.concurrency, "rounds": args.rounds}
        args.json.write_text(json.dumps({"settings": settings, "rows": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
