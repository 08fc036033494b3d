"""Cold start of the local stack: wall time until every component is ready, per component.

Run: python bench/bench_stack_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from stack.local import LocalStack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    totals = []
    for run in range(args.runs):
        began = time.monotonic()
        with LocalStack() as stack:
            total = time.monotonic() - began
            parts = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(stack.timings.items()))
        totals.append(total)
        print(f"run {run + 1}: all ready in {total:.2f}s ({parts})")
    print(f"median {statistics.median(totals):.2f}s over {len(totals)} runs")


if __name__ == "__main__":
    main()
