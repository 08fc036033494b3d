"""--run-timeout: a hung conformance run fails once, naming what it waited for, and stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HUNG = """
import pytest
from obsconf.stack.waiting import poll

@pytest.mark.guarantee("MET-TARGET-UP")
def test_hangs():
    poll(lambda: False, timeout=120, describe="a condition that never holds")

@pytest.mark.guarantee("MET-EXPOSITION-PARSES")
def test_never_started():
    pass
"""


def test_a_hung_run_fails_naming_what_it_waited_for(tmp_path: Path) -> None:
    (tmp_path / "test_hung.py").write_text(HUNG)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-p", "obsconf.fixtures.conformance", "-q"]
        + ["-p", "no:cacheprovider", "--rootdir", str(tmp_path), "--run-timeout=1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout  # the verdict: the MUST in progress failed
    assert "verdict: FAIL (exit 1): 1 of 1 MUST guarantees failed; the run stopped early: " in (
        proc.stdout
    )
    assert "the run exceeded --run-timeout=1s" in proc.stdout
    assert "waiting for: a condition that never holds" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("1 failed in")  # the run stopped
