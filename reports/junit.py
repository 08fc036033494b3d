"""JUnit XML of a conformance run: one `<testsuite>` per family, one `<testcase>` per guarantee.

Each testcase is `classname=FAMILY name=ID` with `level` and `statement` properties; a failed
guarantee (MUST or SHOULD) has a `<failure>` whose text holds the message and the evidence
that disagreed, a skipped one a `<skipped>`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reports.html import family_of, gap_sentence, ordered_families

MAX_TEXT = 8000


def _evidence_text(evidence: Mapping[str, Any]) -> str:
    lines = [f"[{evidence.get('kind', '')}] {evidence.get('check', '')}"]
    if evidence.get("kind") == "trace":
        lines.append(f"  trace: {evidence.get('trace_id', '')}")
        if gap_sentence(evidence):
            lines.append(f"  gap: {gap_sentence(evidence)}")
    if evidence.get("query"):
        lines.append(f"  query: {evidence['query']}")
    for key in ("expected", "seen"):
        if key in evidence:
            value = evidence[key]
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            lines.append(f"  {key}: {text}")
    return "\n".join(lines)


def build_junit(results: Mapping[str, Any]) -> ET.ElementTree:
    """The JUnit tree of `results` (the `--results` JSON)."""
    guarantees = list(results.get("guarantees") or [])
    root = ET.Element(
        "testsuites",
        name=f"obsconf {results.get('target') or ''}".strip(),
        tests=str(len(guarantees)),
        failures=str(sum(g.get("outcome") == "failed" for g in guarantees)),
        skipped=str(sum(g.get("outcome") == "skipped" for g in guarantees)),
        errors="0",
        time=str(results.get("duration_s") or 0),
    )
    for family in ordered_families(guarantees):
        members = [g for g in guarantees if family_of(g) == family]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=family,
            tests=str(len(members)),
            failures=str(sum(g.get("outcome") == "failed" for g in members)),
            skipped=str(sum(g.get("outcome") == "skipped" for g in members)),
            errors="0",
        )
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="faults", value=",".join(results.get("faults") or []))
        for g in members:
            case = ET.SubElement(suite, "testcase", classname=family, name=str(g.get("id", "")))
            case_props = ET.SubElement(case, "properties")
            ET.SubElement(case_props, "property", name="level", value=str(g.get("level", "")))
            ET.SubElement(
                case_props, "property", name="statement", value=str(g.get("statement", ""))
            )
            for nodeid in g.get("tests") or []:
                ET.SubElement(case_props, "property", name="test", value=str(nodeid))
            message = str(g.get("message") or "")
            if g.get("outcome") == "failed":
                first = message.splitlines()[0] if message else "failed"
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"[{g.get('level', '')}] {first}"[:1000],
                    type=f"{g.get('level', '')} guarantee failed",
                )
                details = [message, *(_evidence_text(e) for e in g.get("evidence") or [])]
                failure.text = "\n\n".join(d for d in details if d)[:MAX_TEXT]
            elif g.get("outcome") == "skipped":
                ET.SubElement(case, "skipped", message=message[:1000])
    return ET.ElementTree(root)


def write_junit(results: Mapping[str, Any], path: Path) -> Path:
    """Write the JUnit XML of `results` to `path` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = build_junit(results)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
