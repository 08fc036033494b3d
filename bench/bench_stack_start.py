"""Cold start of the stack, per backend: wall time until every component is ready.

Backends alternate run by run, so both see the same machine load (this machine is noisy):
quote the medians of one invocation side by side, not figures from separate runs.

Run: python bench/bench_stack_start.py [--runs N] [--backends local,containers]
(containers: a Docker engine and the images, e.g. `obsconf images` + OBSCONF_IMAGES=local)
"""

from __future__ import annotations

import argparse
import statistics
import time

from obsconf.stack.backends import make_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="local,containers")
    args = parser.parse_args()
    backends = args.backends.split(",")
    totals: dict[str, list[float]] = {backend: [] for backend in backends}
    for run in range(args.runs):
        for backend in backends:
            stack = make_stack(backend)
            began = time.monotonic()
            try:
                stack.start()
                total = time.monotonic() - began
                parts = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(stack.timings.items()))
            finally:
                stack.stop()
            totals[backend].append(total)
            print(f"run {run + 1} {backend}: all ready in {total:.2f}s ({parts})", flush=True)
    for backend, values in totals.items():
        print(f"{backend}: median {statistics.median(values):.2f}s over {len(values)} runs")
    if len(backends) == 2:
        a, b = (statistics.median(totals[x]) for x in backends)
        print(f"{backends[1]} / {backends[0]}: {b / a:.2f}x")


if __name__ == "__main__":
    main()
