"""Cost of telemetry on `POST /api/users`: telemetry on vs off, as ratios from one run.

    python bench/bench_user_create.py [--seconds 1] [--concurrency 8] [--slices 15]

Starts its own local stack and three user-services (no consumers to compete for the CPU):
telemetry off (OBSCONF_TELEMETRY=off: no tracer provider, no instrumentation; logs and metrics
stay on), on, and on with nothing sampled (OTEL_TRACES_SAMPLER=always_off: every
instrumentation runs, no span is recorded or exported). It alternates short slices of load
between them: each triplet ran within seconds, so a neighbour's load on a shared machine hits
all three alike.

Per triplet: requests/s ratios (on/off, unsampled/off) and service CPU per request (from the
process's own CPU time; the service is CPU-bound here). The CPU figures split the overhead into
the instrumentation itself (unsampled - off) and recording + exporting spans (on - unsampled).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_polyglot import load_figures
from bench_polyglot import measure as measure_post

from obsconf.reference_services.launcher import ReferenceServices
from obsconf.stack.local import LocalStack

USER = "user-service"


def user(prefix: str, n: int) -> dict:
    return {"name": "bench", "email": f"b{prefix}-{n}@example.com"}


async def measure(base_url: str, seconds: float, concurrency: int) -> float:
    """Created users per second over `seconds` with `concurrency` clients."""
    return await measure_post(base_url + "/api/users", user, seconds, concurrency)


# mode -> (telemetry, extra environment)
MODES: dict[str, tuple[bool, dict[str, str]]] = {
    "off": (False, {}),
    "on": (True, {}),
    "unsampled": (True, {"OTEL_TRACES_SAMPLER": "always_off"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--slices", type=int, default=15)
    args = parser.parse_args()
    rps: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    with LocalStack() as stack, contextlib.ExitStack() as running:
        assert stack.endpoints is not None
        targets = {}
        for mode, (telemetry, env) in MODES.items():
            services = running.enter_context(
                ReferenceServices(stack.endpoints, services=[USER], telemetry=telemetry, env=env)
            )
            targets[mode] = (services.urls[USER], services.processes[USER].proc.pid)
        for url, _ in targets.values():
            asyncio.run(measure(url, 1.0, args.concurrency))  # warm-up: pools, caches
        for _ in range(args.slices):
            for mode, (url, pid) in targets.items():
                r, c = load_figures(url + "/api/users", user, pid, args.seconds, args.concurrency)
                rps[mode].append(r)
                cpu[mode].append(c)
    print(f"POST /api/users, {args.slices} slice triplets of {args.seconds:g}s")
    for mode in ("on", "unsampled"):
        ratios = [x / off for off, x in zip(rps["off"], rps[mode], strict=True)]
        cpu_ratios = [off / x for off, x in zip(cpu["off"], cpu[mode], strict=True)]
        print(
            f"{mode:>9}/off: requests/s median {statistics.median(ratios):.3f} "
            f"(quartiles {_quartiles(ratios)}), CPU per request off/{mode} median "
            f"{statistics.median(cpu_ratios):.3f} (quartiles {_quartiles(cpu_ratios)})"
        )
    med = {mode: statistics.median(values) for mode, values in cpu.items()}
    print(
        "median requests/s: "
        + ", ".join(f"{mode} {statistics.median(values):.1f}" for mode, values in rps.items())
        + "\nmedian service CPU per request: "
        + ", ".join(f"{mode} {value:.2f} ms" for mode, value in med.items())
        + f"\noverhead per request: instrumentation {med['unsampled'] - med['off']:.2f} ms, "
        f"recording + export {med['on'] - med['unsampled']:.2f} ms"
    )


def _quartiles(values: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:.3f}..{q3:.3f}"


if __name__ == "__main__":
    main()
