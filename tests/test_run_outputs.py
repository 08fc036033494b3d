"""Every output of a run is well-formed whatever the implementation wrote, and a run that
reaches no verdict exits with the README's code and says why in its outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
HOSTILE = "\x1b[31mred\x1b[0m \x07bell \x00nul \x1b]0;owned\x07 \ud800 lone"
UNSAFE_BYTES = (b"\x1b", b"\x07", b"\x00")

SUITE = f"""
import os
import pytest

@pytest.mark.guarantee("MET-TARGET-UP")
def test_up():
    if os.environ.get("OBSCONF_FAKE_CRASH"):
        raise SystemError("the harness broke")
    raise AssertionError({HOSTILE!r})

@pytest.mark.guarantee("LOG-JSON-LINES")
def test_skipped():
    pytest.skip({HOSTILE!r})
"""


def _target(tmp_path: Path, **extra: Any) -> Path:
    target = {
        "name": "fake",
        "services": {r: {"url": f"http://127.0.0.1:{9000 + i}"} for i, r in
                     enumerate(("user", "order", "inventory"))},
        "backends": {"prometheus": "http://127.0.0.1:1", "logs": "http://127.0.0.1:2",
                     "traces": "http://127.0.0.1:3"},
        **extra,
    }  # fmt: skip
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(target))
    return path


def _pytest(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    (tmp_path / "test_fake.py").write_text(SUITE)
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), "-q", "-p", "no:cacheprovider"]
        + ["--rootdir", str(tmp_path), f"--target={_target(tmp_path)}"]
        + [f"--out={tmp_path / 'out'}", *args],
        capture_output=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **(env or {})},
        timeout=120,
    )


def test_hostile_text_leaves_every_output_well_formed(tmp_path: Path) -> None:
    proc = _pytest(tmp_path)
    assert proc.returncode == 1, proc.stdout.decode(errors="replace")
    for byte in UNSAFE_BYTES:
        assert byte not in proc.stdout + proc.stderr, f"{byte!r} reached the terminal"
    assert b"\\x1b[31mred" in proc.stdout  # shown, not interpreted
    out = tmp_path / "out"
    junit = ET.parse(out / "junit.xml")  # raises on a control character
    failure = junit.find(".//testcase[@name='MET-TARGET-UP']/failure")
    assert failure is not None and "\\x1b[31mred" in (failure.get("message") or "")
    results = json.loads((out / "results.json").read_bytes().decode("utf-8"))
    assert results["verdict"]["status"] == "FAIL"
    page = (out / "report.html").read_bytes().decode("utf-8")
    assert "\\x1b[31mred" in page and "\\ud800 lone" in page and "\x1b" not in page


def test_nothing_selected_exits_5_and_says_so(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, "-k", "NO-SUCH-GUARANTEE")
    assert proc.returncode == 5, proc.stdout.decode()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "nothing was selected" in results["verdict"]["reason"], results["verdict"]


def test_an_internal_error_keeps_its_cause_in_every_output(tmp_path: Path) -> None:
    conftest = "def pytest_collection_modifyitems(items):\n    raise SystemError('broke')\n"
    (tmp_path / "conftest.py").write_text(conftest)
    proc = _pytest(tmp_path)
    assert proc.returncode == 3, proc.stdout.decode()
    out = tmp_path / "out"
    reason = json.loads((out / "results.json").read_text())["verdict"]["reason"]
    assert "internal error: SystemError: broke (at " in reason, reason
    assert "conftest.py:2)" in reason, reason
    assert "SystemError: broke" in (out / "junit.xml").read_text()
    assert "SystemError: broke" in (out / "report.html").read_text()


def test_a_fault_no_start_command_takes_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "obsconf.conformance.cli", "run", f"--target={_target(tmp_path)}"]
        + ["--fault=no-inject", f"--out={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.strip() == (
        "obsconf run: --fault no-inject: no start command of target 'fake' takes {faults}, "
        "so no service would receive it"
    )
    assert not (tmp_path / "out" / "results.json").exists()
