"""Compare two conformance runs (their `--results` JSON): what newly failed, what was fixed.

python -m reports.compare OLD.json NEW.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEYS = ("newly_failed", "fixed", "still_failing", "new_guarantees", "removed")


def _outcomes(results: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    return {
        str(g["id"]): {"outcome": str(g.get("outcome")), "level": str(g.get("level", ""))}
        for g in results.get("guarantees") or []
    }


def compare_results(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The guarantee ids that changed between `old` and `new`, in catalog (results) order.

    `newly_failed`: failed in new, ran and did not fail in old; `fixed`: failed in old, passed
    in new; `still_failing`: failed in both; `new_guarantees`: only in new (whatever their
    outcome); `removed`: only in old. Also `outcomes` (id -> [old, new] outcome, None where
    absent) and `levels` (id -> MUST/SHOULD), for rendering.
    """
    before, after = _outcomes(old), _outcomes(new)
    diff: dict[str, Any] = {key: [] for key in KEYS}
    for gid, now in after.items():
        was = before.get(gid)
        if was is None:
            diff["new_guarantees"].append(gid)
        elif now["outcome"] == "failed":
            diff["still_failing" if was["outcome"] == "failed" else "newly_failed"].append(gid)
        elif was["outcome"] == "failed" and now["outcome"] == "passed":
            diff["fixed"].append(gid)
    diff["removed"] = [gid for gid in before if gid not in after]
    ids = [*after, *diff["removed"]]
    diff["outcomes"] = {
        gid: [before.get(gid, {}).get("outcome"), after.get(gid, {}).get("outcome")] for gid in ids
    }
    diff["levels"] = {gid: (after.get(gid) or before[gid])["level"] for gid in ids}
    return diff


def render_comparison(diff: Mapping[str, Any]) -> str:
    """The comparison as plain text: a count line, then each non-empty list."""
    titles = {
        "newly_failed": "newly failed",
        "fixed": "fixed",
        "still_failing": "still failing",
        "new_guarantees": "new guarantees",
        "removed": "removed",
    }
    levels = diff.get("levels", {})
    outcomes = diff.get("outcomes", {})
    lines = [", ".join(f"{len(diff.get(k, []))} {titles[k]}" for k in KEYS)]
    for key in KEYS:
        ids = diff.get(key) or []
        if not ids:
            continue
        lines.append(f"{titles[key]} ({len(ids)}):")
        for gid in ids:
            was, now = outcomes.get(gid, [None, None])
            change = f"{was or '-'} -> {now or '-'}"
            lines.append(f"  {levels.get(gid, ''):<6} {gid:<34} {change}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m reports.compare OLD NEW`: print the diff; exit 1 if something newly failed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m reports.compare OLD.json NEW.json", file=sys.stderr)
        return 2
    old, new = (json.loads(Path(a).read_text()) for a in args)
    diff = compare_results(old, new)
    print(render_comparison(diff))
    return 1 if diff["newly_failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
