"""The `obsconf` program: the suite's commands plus the reference services' own (`up`,
`faults`, `reproduce`, fault names checked on `run --fault`). No stack is started here."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from obsconf.conformance import cli as suite_cli
from obsconf.conformance.target import load_target
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
    names = set(suite_cli.program(also=[cli.register])[1].names)
    assert names == {"install", "doctor", "images", "down", "run", "trace"} | {
        "up",
        "faults",
        "reproduce",
    }


def test_the_reference_registers_through_the_entry_point_group() -> None:
    """The console script is the suite's; the reference adds its commands as a plugin would."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"obsconf": "obsconf.conformance.cli:main"}
    group = project["entry-points"][suite_cli.COMMANDS_GROUP]
    assert group == {"reference": "obsconf.reference_services.cli:register"}


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
    reference, foreign = load_target(REFERENCE), load_target(FOREIGN)
    assert cli.fault_error(reference, ["nope"]) is not None
    assert cli.fault_error(reference, ["no-inject", "drop-logs"]) is None
    assert cli.fault_error(reference, []) is None
    # Another implementation's fault names are its own business (its `{faults}`).
    assert cli.fault_error(foreign, ["nope"]) is None
