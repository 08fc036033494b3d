"""Requests per second of `POST /api/users` with telemetry on vs off, as a ratio from one run.

    python bench/bench_user_create.py [--seconds 5] [--concurrency 8] [--rounds 2]

Starts its own local stack and only the user-service (so consumers do not compete for the
CPU), then alternates off/on rounds against fresh service processes. "off" is
OBSCONF_TELEMETRY=off: no tracer provider, no instrumentation; logs and metrics stay on.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from obsconf.reference_services.launcher import ReferenceServices
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.local import LocalStack

USER = "user-service"


async def measure(base_url: str, seconds: float, concurrency: int) -> float:
    """Created users per second over `seconds` with `concurrency` clients."""
    prefix = uuid.uuid4().hex[:8]
    counter = itertools.count()
    done = 0
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            body = {"name": "bench", "email": f"b{prefix}-{next(counter)}@example.com"}
            answer = await http.post(base_url + "/api/users", json=body)
            if answer.status_code != 201:
                raise RuntimeError(f"POST /api/users answered {answer.status_code}: {answer.text}")
            done += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return done / (time.monotonic() - started)


def round_rps(endpoints: Endpoints, telemetry: bool, seconds: float, concurrency: int) -> float:
    with ReferenceServices(endpoints, services=[USER], telemetry=telemetry) as services:
        url = services.urls[USER]
        asyncio.run(measure(url, 1.0, concurrency))  # warm-up: pools, JIT-free caches
        return asyncio.run(measure(url, seconds, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[bool, list[float]] = {False: [], True: []}
    with LocalStack() as stack:
        assert stack.endpoints is not None
        for _ in range(args.rounds):
            for telemetry in (False, True):
                rps = round_rps(stack.endpoints, telemetry, args.seconds, args.concurrency)
                results[telemetry].append(rps)
                print(f"telemetry {'on ' if telemetry else 'off'}: {rps:8.1f} req/s", flush=True)
    off, on = statistics.mean(results[False]), statistics.mean(results[True])
    print(
        f"POST /api/users: off {off:.1f} req/s, on {on:.1f} req/s, "
        f"on/off = {on / off:.3f} (overhead {(1 - on / off) * 100:.1f} %)"
    )


if __name__ == "__main__":
    main()
