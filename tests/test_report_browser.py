"""The report opened in a real headless Chromium with the network cut off."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from obsconf.conformance.results import load_results
from obsconf.reports.html import write_report

DATA = Path(__file__).resolve().parent / "data"
CHROMIUM = "/usr/bin/chromium"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with background networking off and every fetch sent to a dead
    proxy (127.0.0.1:9), so a report that needed the network would show it."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    command = [
        CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium")),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--proxy-server=127.0.0.1:9",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return write_report(load_results(DATA / "results_no_inject.json"), tmp_path / "report.html")


def test_screenshot(tmp_path: Path, report: Path) -> None:
    shot = tmp_path / "shot.png"
    run = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert shot.exists(), f"no screenshot; chromium said:\n{run.stderr[-2000:]}"
    assert shot.stat().st_size > 10_000, "the screenshot is (nearly) blank"
    assert "ERR_" not in run.stderr, run.stderr[-2000:]


def test_dom_has_verdict_and_waterfall(tmp_path: Path, report: Path) -> None:
    run = chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = run.stdout
    assert 'id="verdict"' in dom, f"no verdict in the DOM; chromium said:\n{run.stderr[-2000:]}"
    assert ">FAIL</b>" in dom
    assert "<svg" in dom and 'class="waterfall"' in dom
    assert "TRC-ONE-TRACE-PER-FLOW" in dom
