"""N user flows end to end, every one accounted for: send time, drain time, freshness, losses.

    python bench/bench_load.py [--flows 1000] [--concurrency 32] [--target targets/reference.yaml]

Starts the target's stack and services (the reference on the local stack by default), sends
N concurrent `POST /api/users` flows (and four 404s), then waits until every flow's trace is
complete and its consumers' lines are in the log store (conformance.load). Prints the send
phase, the drain (last answer -> last trace complete), telemetry freshness p50/p99, the
request-counter check and the reconciliation table. Exit 1 if any flow is not whole.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from obsconf.conformance.load.account import account
from obsconf.conformance.load.send import CONCURRENCY, send, tap
from obsconf.conformance.metrics import (
    await_scrape_after,
    delta,
    expected_requests,
    format_counts,
    selector,
    snapshot,
)
from obsconf.conformance.system import open_system
from obsconf.conformance.target import load_target

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--target", type=Path, default=REPO / "targets" / "reference.yaml")
    parser.add_argument("--stack", default="local")
    parser.add_argument("--timeout", type=float, default=300.0, help="drain deadline, s")
    args = parser.parse_args()
    target = load_target(args.target)
    system = open_system(target, stack=args.stack)
    try:
        labels = [target.labels[k] for k in ("method", "route", "status")]
        series = selector(target, target.metrics["requests"], system.names["user"])
        await_scrape_after(system.prometheus, system.names["user"], time.time())
        before = snapshot(system.prometheus, series, labels)
        subjects = [target.subjects[k] for k in ("user_created", "order_created")]
        with tap(system, subjects) as tapped:
            sent = send(system, args.flows, args.concurrency)
            send_s = sent.ended - sent.started
            print(
                f"sent {args.flows} flows (+4 404s), concurrency {args.concurrency}, in "
                f"{send_s:.1f}s ({args.flows / send_s:.1f} flows/s)",
                flush=True,
            )
            last = [0.0]

            def progress(line: str) -> None:
                if time.monotonic() - last[0] >= 5:
                    last[0] = time.monotonic()
                    print(line, flush=True)

            accounting = account(
                system, sent, tapped.snapshot if tapped else None, args.timeout, progress
            )
        await_scrape_after(system.prometheus, system.names["user"], sent.ended)
        counted = delta(before, snapshot(system.prometheus, series, labels))
        expected = expected_requests(sent.calls)
    finally:
        system.close()
    complete = sum(f.complete_at is not None for f in accounting.flows)
    print(
        f"drain: last trace complete {accounting.drained_s:.1f}s after the last answer "
        f"({complete}/{len(accounting.flows)} complete, {accounting.rounds} polling rounds); "
        f"end to end {send_s + accounting.drained_s:.1f}s"
    )
    print(f"freshness: {accounting.freshness.describe()}")
    exact = counted == expected
    print(
        "request counters: "
        + (
            "exact"
            if exact
            else f"expected {format_counts(expected)}, counted {format_counts(counted)}"
        )
    )
    print(accounting.table())
    return 0 if exact and accounting.whole() == len(accounting.flows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
