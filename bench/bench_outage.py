"""A long PostgreSQL outage, longer than any redelivery budget, graded by the suite's RES family.

Runs `obsconf run -k RES-OUTAGE --outage-seconds S` once per variant (the reference as it is,
and with each fault given) on one local stack, and prints per variant the orders accepted
during the outage, how many were reserved after it and the verdict of each RES guarantee.

Run: python bench/bench_outage.py [--seconds 80] [--fault delivery-cap] [--target FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from obsconf.stack.local import LocalStack

REPO = Path(__file__).resolve().parent.parent


def run_variant(endpoints: Path, target: Path, seconds: float, fault: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="obsconf-bench-outage-") as scratch:
        out = Path(scratch)
        command = [sys.executable, "-m", "obsconf.reference_services.cli", "run"]
        command += [f"--target={target}", f"--out={out}", f"--stack-endpoints={endpoints}"]
        command += ["-k", "RES-OUTAGE", f"--outage-seconds={seconds}"]
        command += [f"--fault={fault}"] if fault else []
        subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        results = json.loads((out / "results.json").read_text())
    figures: dict = {"fault": fault or "none", "outage_s": seconds}
    for g in results["guarantees"]:
        figures[g["id"]] = g["outcome"]
        for item in g.get("evidence") or []:
            seen = str(item.get("seen", ""))
            if match := re.match(r"(\d+) reserved, (\d+) lost", seen):
                figures["reserved"], figures["lost"] = int(match[1]), int(match[2])
            elif g["id"] == "RES-OUTAGE-503":
                figures["during_outage_user_post"] = seen
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=80.0)
    parser.add_argument("--fault", action="append", default=[])
    parser.add_argument("--target", type=Path, default=REPO / "targets" / "reference.yaml")
    args = parser.parse_args()
    with LocalStack() as stack, tempfile.TemporaryDirectory() as scratch:
        endpoints = Path(scratch) / "endpoints.json"
        endpoints.write_text(json.dumps(stack.endpoints.as_dict()))
        for fault in [None, *args.fault]:
            print(json.dumps(run_variant(endpoints, args.target, args.seconds, fault)), flush=True)


if __name__ == "__main__":
    main()
