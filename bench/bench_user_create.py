"""Cost of telemetry on `POST /api/users`: telemetry on vs off, as ratios from one run.

    python bench/bench_user_create.py [--seconds 1] [--concurrency 8] [--slices 15]

Starts its own local stack and two user-services (no consumers to compete for the CPU), one
with telemetry off (OBSCONF_TELEMETRY=off: no tracer provider, no instrumentation; logs and
metrics stay on) and one on, then alternates short slices of load between them: each on/off
pair ran a second apart, so a neighbour's load on a shared machine hits both sides alike.

Two ratios per pair, then their median and quartiles: requests/s (on/off), and service CPU
per request (off/on, from the process's own CPU time; equal to the first when the service is
CPU-bound, as it is here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_polyglot import measure as measure_post

from obsconf.reference_services.launcher import ReferenceServices
from obsconf.stack.local import LocalStack

USER = "user-service"


def user(prefix: str, n: int) -> dict:
    return {"name": "bench", "email": f"b{prefix}-{n}@example.com"}


async def measure(base_url: str, seconds: float, concurrency: int) -> float:
    """Created users per second over `seconds` with `concurrency` clients."""
    return await measure_post(base_url + "/api/users", user, seconds, concurrency)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def slice_figures(url: str, pid: int, seconds: float, concurrency: int) -> tuple[float, float]:
    """(requests/s, service CPU ms per request) over one slice of `seconds`."""
    cpu = cpu_seconds(pid)
    rps = asyncio.run(measure(url, seconds, concurrency))
    return rps, (cpu_seconds(pid) - cpu) * 1000 / (rps * seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--slices", type=int, default=15)
    args = parser.parse_args()
    rps: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    with LocalStack() as stack, contextlib.ExitStack() as running:
        assert stack.endpoints is not None
        services = {
            telemetry: running.enter_context(
                ReferenceServices(stack.endpoints, services=[USER], telemetry=telemetry)
            )
            for telemetry in (False, True)
        }
        targets = {t: (s.urls[USER], s.processes[USER].proc.pid) for t, s in services.items()}
        for url, _ in targets.values():
            asyncio.run(measure(url, 1.0, args.concurrency))  # warm-up: pools, caches
        for _ in range(args.slices):
            for telemetry, (url, pid) in targets.items():
                r, c = slice_figures(url, pid, args.seconds, args.concurrency)
                rps[telemetry].append(r)
                cpu[telemetry].append(c)
    ratios = [on / off for off, on in zip(rps[False], rps[True], strict=True)]
    cpu_ratios = [off / on for off, on in zip(cpu[False], cpu[True], strict=True)]
    print(
        f"POST /api/users, {args.slices} slice pairs of {args.seconds:g}s: "
        f"off {statistics.median(rps[False]):.1f} req/s, on {statistics.median(rps[True]):.1f} "
        f"req/s; on/off per pair: median {statistics.median(ratios):.3f} "
        f"(overhead {(1 - statistics.median(ratios)) * 100:.1f} %), "
        f"quartiles {_quartiles(ratios)}\n"
        f"service CPU per request: off {statistics.median(cpu[False]):.2f} ms, on "
        f"{statistics.median(cpu[True]):.2f} ms; off/on per pair: median "
        f"{statistics.median(cpu_ratios):.3f}, quartiles {_quartiles(cpu_ratios)}"
    )


def _quartiles(values: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:.3f}..{q3:.3f}"


if __name__ == "__main__":
    main()
