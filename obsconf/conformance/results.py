"""The results of a conformance run: one typed model, and the one verdict it gives.

`results.json` is `RunResults.to_dict()`; the HTML report, the JUnit XML, `obsconf.reports.compare`
and `obsconf reproduce` read a run through this model (`load_results`, `RunResults.from_dict`),
never as raw dicts. The verdict — PASS, FAIL or INCOMPLETE — and the
exit status of a run come from `verdict()` alone:

- PASS, exit 0: no MUST failed, no declared bug passed, and every MUST ran (or is declared
  `not_applicable`).
- FAIL, exit 1: a MUST guarantee failed, or a guarantee declared `bug` passed (XPASS: the
  declaration is stale).
- INCOMPLETE, exit 6: nothing failed, but a MUST was skipped without a `not_applicable`
  declaration (a capability the target does not declare, such as `error_hook`, or a declared
  `missing_feature`), or a MUST could not be judged because a backend of the harness did not
  answer (outcome `incomplete`, see `obsconf.conformance.triage`), or nothing ran, or the run
  stopped early.

A failed SHOULD guarantee is reported and does not change the verdict; a declared bug that
fails as expected (XFAIL) does not either.

Schema versions: 1 is the unversioned document written before deviations and the verdict
were recorded (read as is: no deviations, verdict recomputed); 2 adds `schema_version`,
`verdict`, `stopped`, `deviations` and a `deviation` per guarantee; 3 adds, per guarantee,
`fed_by` (the scenarios its verdict rests on) and `examined` (what the whole-run sweep counted:
lines, spans, traces, requests); 4 adds the outcome `incomplete` (a guarantee that could not be
judged: a backend did not answer). In every version a guarantee's `evidence` is a list of JSON
objects each naming its `kind`; they are read into the classes of `obsconf.conformance.evidence`
(an unknown kind is refused).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from obsconf.conformance.catalog import FAMILIES, Guarantee, Level
from obsconf.conformance.deviations import Deviation, DeviationKind
from obsconf.conformance.evidence import Evidence, EvidenceError, SweepEvidence, evidence_from_dict

SCHEMA_VERSION = 4


class Outcome(StrEnum):
    """What became of a guarantee (or of one test of it) in a run: the word results.json holds.

    XFAILED and XPASSED only a declared bug can have: it failed as declared, or it passed.
    INCOMPLETE is a failure that is the harness's trouble, not the implementation's: a backend
    (Prometheus, the log store, the trace store) did not answer, so the guarantee could not be
    judged; its message names the backend first."""

    PASSED = "passed"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"

    @property
    def badge(self) -> str:
        """PASS, FAIL, INCOMPLETE, SKIP, XFAIL or XPASS: how the terminal and the reports show
        it."""
        return _BADGES[self]

    @property
    def failing(self) -> bool:
        """Counts as a failure of the guarantee (for the verdict when MUST, and compare)."""
        return self in (Outcome.FAILED, Outcome.XPASSED)

    @property
    def of_a_declared_bug(self) -> bool:
        """XFAILED or XPASSED: tallies show these only when a run has them."""
        return self in (Outcome.XFAILED, Outcome.XPASSED)

    @property
    def occasional(self) -> bool:
        """Shown in tallies only when a run has it: a declared bug's outcomes, INCOMPLETE."""
        return self.of_a_declared_bug or self == Outcome.INCOMPLETE


_BADGES = {
    Outcome.PASSED: "PASS",
    Outcome.FAILED: "FAIL",
    Outcome.INCOMPLETE: "INCOMPLETE",
    Outcome.SKIPPED: "SKIP",
    Outcome.XFAILED: "XFAIL",
    Outcome.XPASSED: "XPASS",
}


class Status(StrEnum):
    """The verdict of a run (see the module docstring)."""

    PASS = "PASS"
    FAIL = "FAIL"
    INCOMPLETE = "INCOMPLETE"

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {Status.PASS: 0, Status.FAIL: 1, Status.INCOMPLETE: 6}


class ResultsError(ValueError):
    """A results document that this version cannot read (malformed, or a newer schema)."""


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str

    @property
    def exit_code(self) -> int:
        return self.status.exit_code

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "reason": self.reason}


@dataclass(frozen=True)
class GuaranteeResult:
    """One guarantee's outcome in a run, folded over the tests that verify it."""

    id: str
    level: Level
    family: str
    statement: str
    outcome: Outcome
    message: str = ""
    tests: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    deviation: Deviation | None = None
    fed_by: tuple[str, ...] = ()
    examined: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:  # the words are welcome where the enums are meant
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        object.__setattr__(self, "level", Level(self.level))

    @property
    def failing(self) -> bool:
        """Failed, or declared a bug and passed."""
        return self.outcome.failing

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "level": self.level,
            "family": self.family,
            "statement": self.statement,
            "outcome": self.outcome,
            "message": self.message,
            "tests": list(self.tests),
            "evidence": [e.to_dict() for e in self.evidence],
            "deviation": self.deviation.as_dict() if self.deviation else None,
            "fed_by": list(self.fed_by),
            "examined": dict(self.examined),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GuaranteeResult:
        gid = str(data["id"])
        outcome, level = data.get("outcome"), data.get("level")
        if outcome not in tuple(Outcome):
            raise ResultsError(f"guarantee {gid}: unknown outcome {outcome!r}")
        if level not in tuple(Level):
            raise ResultsError(f"guarantee {gid}: unknown level {level!r}")
        deviation = data.get("deviation")
        try:
            evidence = tuple(evidence_from_dict(e) for e in data.get("evidence") or ())
        except EvidenceError as error:
            raise ResultsError(f"guarantee {gid}: {error}") from error
        return cls(
            id=gid,
            level=Level(level),
            family=str(data.get("family") or gid.split("-", 1)[0]),
            statement=str(data.get("statement", "")),
            outcome=Outcome(outcome),
            message=str(data.get("message") or ""),
            tests=tuple(str(t) for t in data.get("tests") or ()),
            evidence=evidence,
            deviation=Deviation.from_dict(deviation) if deviation else None,
            fed_by=tuple(str(name) for name in data.get("fed_by") or ()),
            examined={str(k): int(v) for k, v in (data.get("examined") or {}).items()},
        )


def verdict(guarantees: Sequence[GuaranteeResult], stopped: str | None = None) -> Verdict:
    """The verdict of a run (see the module docstring for the rules and exit codes)."""
    must = [g for g in guarantees if g.level == Level.MUST]
    failed = [g for g in must if g.outcome == Outcome.FAILED]
    xpassed = [g for g in guarantees if g.outcome == Outcome.XPASSED]
    skipped = [g for g in must if g.outcome == Outcome.SKIPPED]
    unjudged = [g for g in must if g.outcome == Outcome.INCOMPLETE]
    should_unjudged = [
        g for g in guarantees if g.level != Level.MUST and g.outcome == Outcome.INCOMPLETE
    ]
    excused = [g for g in skipped if _not_applicable(g)]
    unverified = [g for g in skipped if not _not_applicable(g)]
    xfailed = [g for g in guarantees if g.outcome == Outcome.XFAILED]
    should_failed = [g for g in guarantees if g.level != Level.MUST and g.outcome == Outcome.FAILED]
    notes = []
    if xfailed:
        notes.append(f"{len(xfailed)} declared bug(s) failed as expected ({_ids(xfailed)})")
    if excused:
        notes.append(f"{len(excused)} MUST declared not_applicable ({_ids(excused)})")
    if should_failed:
        notes.append(f"{len(should_failed)} SHOULD failed (reported only)")
    if should_unjudged:
        notes.append(f"{len(should_unjudged)} SHOULD could not be judged ({_ids(should_unjudged)})")
    if unjudged and (failed or xpassed or stopped):
        notes.append(f"{len(unjudged)} MUST could not be judged ({_ids(unjudged)})")
    if stopped:
        notes.append(f"the run stopped early: {stopped}")
    tail = "".join(f"; {n}" for n in notes)
    if failed or xpassed:
        parts = []
        if failed:
            parts.append(f"{len(failed)} of {len(must)} MUST guarantees failed")
        if xpassed:
            parts.append(
                f"{len(xpassed)} declared bug(s) passed: remove the declaration ({_ids(xpassed)})"
            )
        return Verdict(Status.FAIL, "; ".join(parts) + tail)
    if stopped:
        return Verdict(Status.INCOMPLETE, f"no MUST failed{tail}")
    if not guarantees:
        return Verdict(Status.INCOMPLETE, "no guarantee ran")
    if unjudged:
        causes = "; ".join(dict.fromkeys(_first_line(g.message) for g in unjudged if g.message))
        return Verdict(
            Status.INCOMPLETE,
            f"no MUST failed, but {len(unjudged)} of {len(must)} MUST could not be judged "
            f"({_ids(unjudged)}): {causes or 'a backend did not answer'}{tail}",
        )
    if unverified:
        why = ", ".join(
            f"{g.id} ({g.deviation.describe()})" if g.deviation else g.id for g in unverified
        )
        return Verdict(
            Status.INCOMPLETE,
            f"no MUST failed, but {len(unverified)} of {len(must)} MUST were not verified: "
            f"{why}{tail}",
        )
    passed = sum(g.outcome == Outcome.PASSED for g in must)
    if not must:
        return Verdict(Status.PASS, f"no MUST guarantee was selected; nothing failed{tail}")
    return Verdict(Status.PASS, f"all {passed} MUST guarantees passed{tail}")


def _not_applicable(g: GuaranteeResult) -> bool:
    return g.deviation is not None and g.deviation.kind == DeviationKind.NOT_APPLICABLE


def _first_line(message: str) -> str:
    return message.splitlines()[0] if message else ""


def _ids(guarantees: Iterable[GuaranteeResult]) -> str:
    return ", ".join(g.id for g in guarantees)


@dataclass(frozen=True)
class RunResults:
    """A whole run: what was graded, every guarantee that ran, and the declarations."""

    guarantees: tuple[GuaranteeResult, ...]
    target: str | None = None
    faults: tuple[str, ...] = ()
    grafana: str | None = None
    duration_s: float | None = None
    # Every deviation the target declares, run or not (by guarantee id).
    deviations: Mapping[str, Deviation] = field(default_factory=dict)
    stopped: str | None = None  # why the run ended before its last test, if it did
    schema_version: int = SCHEMA_VERSION

    @property
    def verdict(self) -> Verdict:
        return verdict(self.guarantees, self.stopped)

    def guarantee(self, gid: str) -> GuaranteeResult | None:
        return next((g for g in self.guarantees if g.id == gid), None)

    def count(self, outcome: Outcome) -> int:
        return sum(g.outcome == outcome for g in self.guarantees)

    @property
    def tally(self) -> str:
        """`40 passed, 2 failed, 0 skipped` (and incomplete, xfailed, xpassed when there are
        any)."""
        return ", ".join(
            f"{self.count(o)} {o}" for o in Outcome if not o.occasional or self.count(o)
        )

    @property
    def families(self) -> list[str]:
        """The families of the guarantees that ran: the catalog's in its order, then others."""
        present = {g.family for g in self.guarantees}
        known = [f for f in FAMILIES if f in present]
        return known + sorted(present - set(known))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "target": self.target,
            "faults": list(self.faults),
            "grafana": self.grafana,
            "duration_s": self.duration_s,
            "stopped": self.stopped,
            "verdict": self.verdict.as_dict(),
            "deviations": {gid: d.as_dict() for gid, d in self.deviations.items()},
            "guarantees": [g.as_dict() for g in self.guarantees],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResults:
        if not isinstance(data, Mapping) or not isinstance(data.get("guarantees"), list):
            raise ResultsError("not an obsconf results document (no `guarantees` list)")
        version = data.get("schema_version", 1)
        if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
            raise ResultsError(
                f"results schema_version {version!r} is not readable by this obsconf "
                f"(reads 1 to {SCHEMA_VERSION})"
            )
        try:
            return cls(
                guarantees=tuple(GuaranteeResult.from_dict(g) for g in data["guarantees"]),
                target=data.get("target"),
                faults=tuple(data.get("faults") or ()),
                grafana=data.get("grafana"),
                duration_s=data.get("duration_s"),
                deviations={
                    str(gid): Deviation.from_dict(d)
                    for gid, d in (data.get("deviations") or {}).items()
                },
                stopped=data.get("stopped"),
                schema_version=version,
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ResultsError):
                raise
            raise ResultsError(f"malformed results document: {error!r}") from error


def load_results(path: str | Path) -> RunResults:
    """Read a results.json (any schema version this obsconf knows)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ResultsError(f"{path}: cannot read results: {error}") from error
    try:
        return RunResults.from_dict(data)
    except ResultsError as error:
        raise ResultsError(f"{path}: {error}") from error


def write_results(results: RunResults, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results.to_dict(), indent=2, default=str))
    return path


# --- folding test reports into guarantee results ----------------------------------------------


@dataclass(frozen=True)
class Record:
    """One pytest report of a test that verifies guarantees (a phase that ran or skipped)."""

    nodeid: str
    guarantees: tuple[str, ...]
    when: str
    outcome: Outcome
    message: str = ""
    evidence: tuple[Evidence, ...] = ()
    duration_s: float = 0.0


# How a guarantee's tests fold: the first outcome present wins. A declared bug with one test
# still failing is still there (XFAIL), even if another of its tests passed. A test that could
# not be judged (INCOMPLETE) yields to a real failure and outweighs every other outcome.
_PRECEDENCE = (
    Outcome.FAILED,
    Outcome.INCOMPLETE,
    Outcome.XFAILED,
    Outcome.XPASSED,
    Outcome.PASSED,
    Outcome.SKIPPED,
)


def fold(
    records: Iterable[Record],
    catalog: Mapping[str, Guarantee],
    deviations: Mapping[str, Deviation] | None = None,
) -> tuple[GuaranteeResult, ...]:
    """One result per guarantee that has a record, in catalog order."""
    deviations = deviations or {}
    by_id: dict[str, list[Record]] = {}
    for record in records:
        for gid in record.guarantees:
            by_id.setdefault(gid, []).append(record)
    folded = []
    for gid, guarantee in catalog.items():
        runs = by_id.get(gid)
        if not runs:
            continue
        outcome = next(o for o in _PRECEDENCE if any(r.outcome == o for r in runs))
        chosen = [r for r in runs if r.outcome == outcome] if outcome != Outcome.PASSED else runs
        folded.append(
            GuaranteeResult(
                id=gid,
                level=guarantee.level,
                family=guarantee.family,
                statement=guarantee.statement,
                outcome=outcome,
                message=chosen[0].message,
                tests=tuple(dict.fromkeys(r.nodeid for r in runs)),
                evidence=tuple(e for r in chosen for e in r.evidence),
                deviation=deviations.get(gid),
                fed_by=guarantee.fed_by,
                examined=_examined(runs),
            )
        )
    return tuple(folded)


def _examined(runs: Iterable[Record]) -> dict[str, int]:
    """What the sweep tests of a guarantee counted (`SweepEvidence.examined`), per kind."""
    total: dict[str, int] = {}
    for record in runs:
        for piece in record.evidence:
            if not isinstance(piece, SweepEvidence):
                continue
            for key, count in piece.examined.items():
                if key != "window_s":
                    total[key] = max(total.get(key, 0), count)
    return total
