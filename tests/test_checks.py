"""Mistakes in the suite's own code are refused, not silently passed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from obsconf.conformance.checks import check_findings
from obsconf.conformance.evidence import Evidence
from obsconf.conformance.traces.findings import FindingCode
from obsconf.reference_services import faults

REPO = Path(__file__).resolve().parent.parent


def test_check_findings_refuses_a_code_the_analysis_never_produces() -> None:
    recorded: list[Evidence] = []
    with pytest.raises(ValueError, match=r"unknown finding code\(s\) orphans; known: .*orphan"):
        check_findings(
            None,  # type: ignore[arg-type]  (refused before the flow is read)
            {"orphan", "orphans"},
            recorded.append,
            "no orphans",
        )
    assert recorded == [], "nothing is recorded for a check that cannot run"
    assert FindingCode("orphan") is FindingCode.ORPHAN


def test_an_unknown_fault_name_raises_even_under_python_O() -> None:
    with pytest.raises(
        faults.UnknownFault, match=r"no such fault: 'no-injekt'; valid: .*no-inject"
    ):
        faults.enabled("no-injekt")
    probe = (
        "from reference_services import faults\n"
        "try:\n    faults.enabled('no-injekt')\nexcept faults.UnknownFault:\n    print('refused')"
    )
    run = subprocess.run(
        [sys.executable, "-O", "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert run.stdout.strip() == "refused", run.stderr
