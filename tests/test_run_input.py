"""A run's own input: every number is in its range and --out is writable before anything
starts (one line naming the option, exit 2 from `obsconf run`, a usage error from pytest),
and SIGHUP stops a run as Ctrl-C does, with its results written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from obsconf.stack.waiting import poll

REPO = Path(__file__).resolve().parent.parent
FOREIGN = REPO / "tests" / "foreign_impl" / "target.yaml"


def _obsconf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "obsconf.conformance.cli", "run", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--flows", "0", "'0' is out of range: an integer >= 1"),
        ("--flows", "-3", "'-3' is out of range: an integer >= 1"),
        ("--flows", "many", "'many' is not an integer >= 1"),
        ("--outage-seconds", "-5", "'-5' is out of range: a number >= 1"),
        ("--outage-seconds", "nan", "'nan' is out of range: a number >= 1"),
        ("--run-timeout", "-1", "'-1' is out of range: a number >= 0 (0 = none)"),
    ],
)
def test_a_number_out_of_range_is_one_line(
    option: str, value: str, said: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    proc = _obsconf(f"--target={FOREIGN}", f"{option}={value}", f"--out={out}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"argument {option}: {said}" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
    pytest_proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--target={FOREIGN}"]
        + [f"{option}={value}", f"--out={out}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert pytest_proc.returncode == pytest.ExitCode.USAGE_ERROR, pytest_proc.stderr
    assert f"argument {option}: {said}" in pytest_proc.stderr, pytest_proc.stderr


def test_out_that_is_a_file_is_refused_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("not a directory")
    proc = _obsconf(f"--target={FOREIGN}", f"--out={tmp_path / 'taken'}", cwd=tmp_path)
    assert proc.returncode == 2
    said = f"obsconf run: --out {tmp_path / 'taken'}: is a file, not a directory"
    assert proc.stdout.strip() == said, proc.stdout


def test_out_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    unwritable = Path("/proc/obsconf-out")  # not even root makes a directory there
    proc = _obsconf(f"--target={FOREIGN}", f"--out={unwritable}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"obsconf run: --out {unwritable}: cannot write there ("), (
        proc.stdout
    )


HUNG = """
import os
from pathlib import Path

import pytest

from obsconf.stack.waiting import poll

@pytest.mark.guarantee("MET-TARGET-UP")
def test_hangs():
    Path(os.environ["OBSCONF_TEST_STARTED"]).touch()
    poll(lambda: False, timeout=120, describe="a condition that never holds")
"""


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_stopping_signal_ends_the_run_incomplete_with_results(
    sig: signal.Signals, tmp_path: Path
) -> None:
    """A closed terminal (SIGHUP) or a cancelled CI job (SIGTERM): the session is torn down as
    on Ctrl-C and the run ends INCOMPLETE with its results, not killed without a report."""
    (tmp_path / "test_hung.py").write_text(HUNG)
    started = tmp_path / "started"
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(tmp_path), "-p", "obsconf.fixtures.conformance"]
        + ["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), f"--out={out}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "OBSCONF_TEST_STARTED": str(started)},
    )
    try:
        poll(started.exists, timeout=60, describe="the hung test to start")
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    results = json.loads((out / "results.json").read_text())
    assert results["verdict"]["status"] == "INCOMPLETE", output
    assert "interrupted (Ctrl-C, SIGTERM or SIGHUP)" in results["verdict"]["reason"], results
    assert proc.returncode == 6, output
