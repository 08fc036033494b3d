"""JUnit XML of a conformance run: one `<testsuite>` per family, one `<testcase>` per guarantee.

Each testcase is `classname=FAMILY name=ID` with `level` and `statement` properties (and
`deviation` when the target declares one); a failed guarantee (MUST or SHOULD) has a
`<failure>` whose text holds the message and the evidence that disagreed, a skipped one a
`<skipped>`. A declared bug that failed as expected is `<skipped type="xfail">` (as pytest's own
JUnit writes an xfail); one that passed is a `<failure type="xpass">`. Every suite carries the
run's verdict as properties.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from obsconf.conformance.evidence import (
    CompareEvidence,
    Evidence,
    FreshnessEvidence,
    LogQueryEvidence,
    ReconciliationEvidence,
    TraceEvidence,
)
from obsconf.conformance.results import GuaranteeResult, Outcome, RunResults
from obsconf.reports.text import visible

MAX_TEXT = 8000


def _evidence_text(evidence: Evidence) -> str:
    """`[kind] check`, then by its class: the trace and its gap, the query, expected and seen."""
    lines = [f"[{evidence.kind}] {evidence.check}"]
    match evidence:
        case TraceEvidence():
            lines.append(f"  trace: {evidence.trace_id}")
            if evidence.gap_sentence:
                lines.append(f"  gap: {evidence.gap_sentence}")
        case LogQueryEvidence() if evidence.query:
            lines.append(f"  query: {evidence.query}")
        case CompareEvidence():
            if evidence.query:
                lines.append(f"  query: {evidence.query}")
            lines += _sides(evidence.expected, evidence.seen)
        case ReconciliationEvidence() | FreshnessEvidence():
            lines += _sides(evidence.expected, evidence.seen)
    return "\n".join(lines)


def _sides(expected: object, seen: object) -> list[str]:
    return [
        f"  {key}: {value if isinstance(value, str) else json.dumps(value, default=str)}"
        for key, value in (("expected", expected), ("seen", seen))
    ]


def _failures(guarantees: list[GuaranteeResult]) -> str:
    return str(sum(g.failing for g in guarantees))


def _errors(guarantees: list[GuaranteeResult]) -> str:
    return str(sum(g.outcome == Outcome.INCOMPLETE for g in guarantees))


def _skips(guarantees: list[GuaranteeResult]) -> str:
    return str(sum(g.outcome in (Outcome.SKIPPED, Outcome.XFAILED) for g in guarantees))


def _case(suite: ET.Element, g: GuaranteeResult) -> None:
    case = ET.SubElement(suite, "testcase", classname=g.family, name=g.id)
    props = ET.SubElement(case, "properties")
    ET.SubElement(props, "property", name="level", value=g.level)
    ET.SubElement(props, "property", name="statement", value=g.statement)
    if g.deviation is not None:
        ET.SubElement(props, "property", name="deviation", value=g.deviation.describe())
    for nodeid in g.tests:
        ET.SubElement(props, "property", name="test", value=nodeid)
    message = g.message
    first = message.splitlines()[0] if message else g.outcome
    if g.outcome == Outcome.FAILED:
        failure = ET.SubElement(
            case,
            "failure",
            message=f"[{g.level}] {first}"[:1000],
            type=f"{g.level} guarantee failed",
        )
        details = [message, *(_evidence_text(e) for e in g.evidence)]
        failure.text = "\n\n".join(d for d in details if d)[:MAX_TEXT]
    elif g.outcome == Outcome.INCOMPLETE:  # the harness's trouble: an error, not a failure
        ET.SubElement(
            case,
            "error",
            message=f"[{g.level}] could not be judged: {first}"[:1000],
            type="backend did not answer",
        ).text = message[:MAX_TEXT]
    elif g.outcome == Outcome.XPASSED:
        ET.SubElement(
            case, "failure", message=f"[{g.level}] XPASS: {first}"[:1000], type="xpass"
        ).text = message[:MAX_TEXT]
    elif g.outcome == Outcome.XFAILED:
        declared = g.deviation.describe() if g.deviation else "declared"
        skipped = ET.SubElement(
            case, "skipped", message=f"expected failure ({declared}): {first}"[:1000], type="xfail"
        )
        details = [message, *(_evidence_text(e) for e in g.evidence)]
        skipped.text = "\n\n".join(d for d in details if d)[:MAX_TEXT]
    elif g.outcome == Outcome.SKIPPED:
        ET.SubElement(case, "skipped", message=message[:1000])


def _run_properties(suite: ET.Element, results: RunResults) -> None:
    """The run's faults and verdict, on every suite."""
    verdict = results.verdict
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="faults", value=",".join(results.faults))
    ET.SubElement(props, "property", name="verdict", value=verdict.status)
    ET.SubElement(props, "property", name="verdict_reason", value=verdict.reason)
    ET.SubElement(props, "property", name="exit_status", value=str(verdict.exit_code))


def build_junit(results: RunResults) -> ET.ElementTree:
    """The JUnit tree of a run's results."""
    guarantees = list(results.guarantees)
    verdict = results.verdict
    root = ET.Element(
        "testsuites",
        name=f"obsconf {results.target or ''}".strip(),
        tests=str(len(guarantees)),
        failures=_failures(guarantees),
        skipped=_skips(guarantees),
        errors=_errors(guarantees),
        time=str(results.duration_s or 0),
    )
    for family in results.families:
        members = [g for g in guarantees if g.family == family]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=family,
            tests=str(len(members)),
            failures=_failures(members),
            skipped=_skips(members),
            errors=_errors(members),
        )
        _run_properties(suite, results)
        for g in members:
            _case(suite, g)
    if results.stopped:  # a CI that reads only JUnit sees why the run ended early
        root.set("errors", str(int(root.get("errors", "0")) + 1))
        suite = ET.SubElement(root, "testsuite", name="run", tests="1", errors="1")
        _run_properties(suite, results)
        case = ET.SubElement(suite, "testcase", classname="run", name="run")
        ET.SubElement(case, "error", message=f"the run stopped early: {results.stopped}"[:1000],
                      type="stopped").text = verdict.reason  # fmt: skip
    return ET.ElementTree(root)


def _make_visible(tree: ET.ElementTree) -> None:
    """Every text and attribute made valid XML, whatever the implementation wrote (an ANSI
    colour in a log line is enough to make a JUnit file unreadable)."""
    for element in tree.iter():
        if element.text:
            element.text = visible(element.text)
        if element.tail:
            element.tail = visible(element.tail)
        for key, value in element.attrib.items():
            element.attrib[key] = visible(value)


def write_junit(results: RunResults, path: Path) -> Path:
    """Write the JUnit XML of `results` to `path` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = build_junit(results)
    _make_visible(tree)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
