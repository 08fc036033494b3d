"""Requests per second of `POST /api/orders`: the Rust order service and the Python reference
order service, each with telemetry on and off, side by side from one run.

    python implementations/order-rust/bench_orders.py [--seconds 5] [--concurrency 8] [--rounds 2]

Starts its own local stack and one order service at a time (no other service competes for the
CPU), alternating the four variants per round against fresh processes. "off" is
OBSCONF_TELEMETRY=off: no spans; logs and metrics stay on. The Rust binary is the one
`cargo build --release --locked` made (CARGO_TARGET_DIR, default
~/.cache/obsconf/cargo-target/order-rust).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stack.endpoints import Endpoints
from stack.local import LocalStack
from stack.services import PREDEFINED, ServiceProcesses, StartCommand, run_values

ORDER = "order-service"
TARGET_DIR = Path(
    os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/obsconf/cargo-target/order-rust")
)
RUST = StartCommand(command=(str(TARGET_DIR / "release" / "order-service"),))


async def measure(base_url: str, seconds: float, concurrency: int) -> float:
    """Created orders per second over `seconds` with `concurrency` clients."""
    counter = itertools.count(1)
    done = 0
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            body = {"user_id": next(counter), "items": [{"sku": "BENCH-1", "qty": 2}]}
            answer = await http.post(base_url + "/api/orders", json=body)
            if answer.status_code != 201:
                raise RuntimeError(f"POST /api/orders answered {answer.status_code}: {answer.text}")
            done += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits) as http:
        started = time.monotonic()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return done / (time.monotonic() - started)


def round_rps(
    endpoints: Endpoints, command: StartCommand, telemetry: bool, seconds: float, concurrency: int
) -> float:
    command = command.with_env(OBSCONF_TELEMETRY="on" if telemetry else "off")
    with ServiceProcesses(endpoints, {ORDER: ("order", command)}, run_values()) as services:
        url = services.urls[ORDER]
        asyncio.run(measure(url, 1.0, concurrency))  # warm-up: connection pools
        return asyncio.run(measure(url, seconds, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    variants = {"rust": RUST, "python": PREDEFINED["reference"]}
    results: dict[tuple[str, bool], list[float]] = {}
    with LocalStack() as stack:
        assert stack.endpoints is not None
        for _ in range(args.rounds):
            for name, command in variants.items():
                for telemetry in (False, True):
                    rps = round_rps(
                        stack.endpoints, command, telemetry, args.seconds, args.concurrency
                    )
                    results.setdefault((name, telemetry), []).append(rps)
                    state = "on " if telemetry else "off"
                    print(f"{name:6} telemetry {state}: {rps:8.1f} req/s", flush=True)
    print("| service | telemetry off (req/s) | telemetry on (req/s) | on/off |")
    print("|---|---|---|---|")
    for name in variants:
        off = statistics.mean(results[(name, False)])
        on = statistics.mean(results[(name, True)])
        print(f"| {name} order-service | {off:.1f} | {on:.1f} | {on / off:.3f} |")


if __name__ == "__main__":
    main()
