"""The `obsconf` program: the suite's commands plus the reference services' own (`up`,
`faults`, `reproduce`, fault names checked on `run --fault`). No stack is started here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from obsconf.reference_services import cli
from obsconf.reference_services.faults import FAULTS

REPO = Path(__file__).resolve().parent.parent
FOREIGN = REPO / "tests" / "foreign_impl" / "target.yaml"
REFERENCE = REPO / "targets" / "reference.yaml"


def _obsconf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "obsconf.reference_services.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_the_program_has_the_suite_and_the_reference_commands() -> None:
    names = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert names == {"install", "doctor", "images", "down", "run", "trace"} | {
        "up",
        "faults",
        "reproduce",
    }


def test_the_entry_point_is_the_composed_program() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'obsconf = "obsconf.reference_services.cli:main"' in pyproject


def test_faults_lists_every_fault_with_what_it_breaks() -> None:
    proc = _obsconf("faults")
    assert proc.returncode == 0
    for name in FAULTS:
        assert f"\n{name} " in "\n" + proc.stdout, name
    assert proc.stdout.count("breaks: ") == len(FAULTS)
    assert "not a negative control" not in proc.stdout


def test_run_rejects_an_unknown_fault_before_anything_starts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _obsconf("run", "--fault=no-such-fault", f"--out={out}")
    assert proc.returncode == 2
    assert "unknown fault(s) no-such-fault" in proc.stdout and "no-inject" in proc.stdout
    assert not out.exists()


def test_reproduce_rejects_an_unknown_fault(tmp_path: Path) -> None:
    proc = _obsconf("reproduce", "no-such-fault", f"--out={tmp_path}")
    assert proc.returncode == 2
    assert "unknown fault 'no-such-fault'" in proc.stdout


def test_fault_names_are_checked_only_for_the_reference() -> None:
    assert cli.fault_error(REFERENCE, ["nope"]) is not None
    assert cli.fault_error(None, ["nope"]) is not None  # the default target is the reference
    assert cli.fault_error(REFERENCE, ["no-inject", "drop-logs"]) is None
    assert cli.fault_error(REFERENCE, []) is None
    # Another implementation's fault names are its own business (its `{faults}`).
    assert cli.fault_error(FOREIGN, ["nope"]) is None
