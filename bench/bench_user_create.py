"""Cost of telemetry on `POST /api/users`: telemetry on vs off, as ratios from one run.

    python bench/bench_user_create.py [--seconds 5] [--concurrency 8] [--rounds 3]

Starts its own local stack and only the user-service (so consumers do not compete for the
CPU), then alternates off/on rounds against fresh service processes. "off" is
OBSCONF_TELEMETRY=off: no tracer provider, no instrumentation; logs and metrics stay on.

Two ratios: requests/s (on/off), and service CPU per request (off/on, from the process's
own CPU time). On a shared machine the first swings with the neighbours' load; the second
does not, and equals the first when the service is CPU-bound, as it is here.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_services.launcher import ReferenceServices
from stack.endpoints import Endpoints
from stack.local import LocalStack

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_round(
    endpoints: Endpoints, telemetry: bool, seconds: float, concurrency: int
) -> tuple[float, float]:
    """(requests/s, service CPU ms per request) of one fresh service process."""
    with ReferenceServices(endpoints, services=[USER], telemetry=telemetry) as services:
        url = services.urls[USER]
        pid = services.processes[USER].proc.pid
        asyncio.run(measure(url, 1.0, concurrency))  # warm-up: pools, JIT-free caches
        cpu = cpu_seconds(pid)
        rps = asyncio.run(measure(url, seconds, concurrency))
        return rps, (cpu_seconds(pid) - cpu) * 1000 / (rps * seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rps: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    with LocalStack() as stack:
        assert stack.endpoints is not None
        for _ in range(args.rounds):
            for telemetry in (False, True):
                r, c = one_round(stack.endpoints, telemetry, args.seconds, args.concurrency)
                rps[telemetry].append(r)
                cpu[telemetry].append(c)
                print(
                    f"telemetry {'on ' if telemetry else 'off'}: {r:8.1f} req/s, "
                    f"{c:5.2f} ms CPU/request",
                    flush=True,
                )
    off, on = statistics.median(rps[False]), statistics.median(rps[True])
    cpu_off, cpu_on = statistics.median(cpu[False]), statistics.median(cpu[True])
    print(
        f"POST /api/users (medians): off {off:.1f} req/s, on {on:.1f} req/s, "
        f"on/off = {on / off:.3f} (overhead {(1 - on / off) * 100:.1f} %)\n"
        f"service CPU per request: off {cpu_off:.2f} ms, on {cpu_on:.2f} ms, "
        f"off/on = {cpu_off / cpu_on:.3f} (overhead {(1 - cpu_off / cpu_on) * 100:.1f} %)"
    )


if __name__ == "__main__":
    main()
