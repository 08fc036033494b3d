"""Compare two conformance runs (their `results.json`): what newly failed, what was fixed.

python -m obsconf.reports.compare OLD.json NEW.json
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from obsconf.conformance.results import Outcome, ResultsError, RunResults, load_results

KEYS = ("newly_failed", "fixed", "still_failing", "new_guarantees", "removed")


def compare_results(old: RunResults, new: RunResults) -> dict[str, Any]:
    """The guarantee ids that changed between `old` and `new`, in catalog (results) order.

    A guarantee is failing when it failed, or when it was declared a bug and passed (XPASS).
    `newly_failed`: failing in new, ran and was not failing in old; `fixed`: failing in old,
    passed in new; `still_failing`: failing in both; `new_guarantees`: only in new (whatever
    their outcome); `removed`: only in old. Also `outcomes` (id -> [old, new] outcome, None
    where absent), `levels` (id -> MUST/SHOULD) and `verdicts` ([old, new] status), for
    rendering.
    """
    before = {g.id: g for g in old.guarantees}
    after = {g.id: g for g in new.guarantees}
    diff: dict[str, Any] = {key: [] for key in KEYS}
    for gid, now in after.items():
        was = before.get(gid)
        if was is None:
            diff["new_guarantees"].append(gid)
        elif now.failing:
            diff["still_failing" if was.failing else "newly_failed"].append(gid)
        elif was.failing and now.outcome == Outcome.PASSED:
            diff["fixed"].append(gid)
    diff["removed"] = [gid for gid in before if gid not in after]
    ids = [*after, *diff["removed"]]
    diff["outcomes"] = {
        gid: [side[gid].outcome if gid in side else None for side in (before, after)] for gid in ids
    }
    diff["levels"] = {gid: (after.get(gid) or before[gid]).level for gid in ids}
    diff["verdicts"] = [old.verdict.status, new.verdict.status]
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
    if diff.get("verdicts"):
        lines.append("verdict: {} -> {}".format(*diff["verdicts"]))
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
    """`python -m obsconf.reports.compare OLD NEW`: print the diff; exit 1 if something newly
    failed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m obsconf.reports.compare OLD.json NEW.json", file=sys.stderr)
        return 2
    try:
        old, new = (load_results(a) for a in args)
    except ResultsError as error:
        print(f"obsconf.reports.compare: {error}", file=sys.stderr)
        return 2
    diff = compare_results(old, new)
    print(render_comparison(diff))
    return 1 if diff["newly_failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
