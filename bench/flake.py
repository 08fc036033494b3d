"""False alarms of the full suite on correct implementations: N runs per variant, no fault.

    python bench/flake.py [--runs 20] [--variants reference,reference-link] [--out FILE]

Runs the whole conformance suite `--runs` times against each target variant, the variants side
by side, each on a local stack of its own (so every run competes for the 2 cores with another
run, as the negative-control matrix does in CI; each run starts its own reference services).
A run is never repeated: every guarantee that does not pass on a correct implementation is a
false alarm. Prints per-guarantee false-alarm counts and the wall-time distribution, and
writes both as JSON to `--out` (default bench/results/flake-<date>.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from obsconf.conformance.results import Outcome  # noqa: E402
from obsconf.reference_services.negative_controls import run_suite  # noqa: E402
from obsconf.stack.local import LocalStack  # noqa: E402


def summarise(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "min": round(ordered[0], 1),
        "median": round(statistics.median(ordered), 1),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 1),
        "max": round(ordered[-1], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--variants", default="reference,reference-link")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    variants = args.variants.split(",")
    out = args.out or REPO / "bench" / "results" / f"flake-{datetime.now(UTC):%Y-%m-%d}.json"
    alarms: dict[str, Counter[str]] = {v: Counter() for v in variants}
    messages: dict[str, list[str]] = {v: [] for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    failed_runs: Counter[str] = Counter()

    def runs_of(variant: str) -> None:
        with LocalStack() as stack, tempfile.TemporaryDirectory() as scratch:
            endpoints = Path(scratch) / "endpoints.json"
            endpoints.write_text(json.dumps(stack.endpoints.as_dict()))
            for run in range(1, args.runs + 1):
                started = time.monotonic()
                results = run_suite("", endpoints, target=REPO / "targets" / f"{variant}.yaml")
                times[variant].append(time.monotonic() - started)
                bad = [g for g in results["guarantees"] if g["outcome"] != Outcome.PASSED]
                failed_runs[variant] += bool(bad)
                for g in bad:
                    alarms[variant][g["id"]] += 1
                    messages[variant].append(f"run {run}: {g['id']}: {g['message'][:300]}")
                print(
                    f"run {run:>3} {variant:<16} {times[variant][-1]:6.1f}s  "
                    f"{'ok' if not bad else 'FALSE ALARM: ' + ', '.join(g['id'] for g in bad)}",
                    flush=True,
                )

    with ThreadPoolExecutor(max_workers=len(variants)) as pool:
        list(pool.map(runs_of, variants))
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs_per_variant": args.runs,
        "variants": {
            v: {
                "runs_with_a_false_alarm": failed_runs[v],
                "false_alarms_by_guarantee": dict(alarms[v]),
                "messages": messages[v],
                "wall_time_s": summarise(times[v]),
            }
            for v in variants
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for v in variants:
        t = report["variants"][v]["wall_time_s"]
        print(
            f"{v}: {failed_runs[v]} of {args.runs} runs with a false alarm "
            f"{dict(alarms[v]) or ''}; wall time min {t['min']} / median {t['median']} / "
            f"p90 {t['p90']} / max {t['max']} s"
        )
    print(f"written: {out}")
    return 1 if any(failed_runs.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
