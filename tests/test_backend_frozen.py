"""The harness's own log store frozen (SIGSTOP) in the middle of a real run: the guarantees
that read it are INCOMPLETE naming it, the run is INCOMPLETE (exit 6), nothing is a FAIL of
the implementation — and the same run with the store answering passes."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from obsconf.stack.waiting import poll
from tests.test_stack_lock import suite_run, up  # noqa: F401  (the `up` fixture)

SELECT = "LOG-JSON-LINES or LOG-FINDABLE-BY-TRACE or LOG-REQUIRED-KEYS"


def log_store_pid(run_dir: str) -> int:
    """The VictoriaLogs process of the stack whose run dir is `run_dir`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"victoria-logs") and run_dir.encode() in b" ".join(argv):
            return int(entry.name)
    raise AssertionError(f"no victoria-logs process of the stack at {run_dir}")


@pytest.mark.stack
def test_a_frozen_log_store_makes_the_run_incomplete_not_failed(
    tmp_path: Path,
    up: Path,  # noqa: F811
) -> None:
    stack = json.loads(up.read_text())
    pid = log_store_pid(stack["run_dir"])
    user_log = Path(stack["log_dir"]) / "user-service.log"
    run = suite_run(up, tmp_path / "out", SELECT)
    try:
        # Frozen once the flow's request is answered: its lines are being shipped, and the
        # checks are about to read them.
        poll(
            lambda: user_log.exists() and "/api/users" in user_log.read_text(errors="replace"),
            timeout=120,
            describe="the flow's request in user-service.log",
        )
        os.kill(pid, signal.SIGSTOP)
        output, _ = run.communicate(timeout=300)
    finally:
        os.kill(pid, signal.SIGCONT)
        if run.poll() is None:
            run.kill()
            run.wait()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    outcomes = {g["id"]: g["outcome"] for g in results["guarantees"]}
    assert "failed" not in outcomes.values(), output[-4000:]
    assert "incomplete" in outcomes.values(), output[-4000:]
    assert run.returncode == 6 and results["verdict"]["status"] == "INCOMPLETE", output[-3000:]
    incomplete = [g for g in results["guarantees"] if g["outcome"] == "incomplete"]
    for g in incomplete:
        assert "the log store (victorialogs) at " in g["message"], g["message"]
        assert stack["logs"] in g["message"], g["message"]
    # The same stack, answering again: the same guarantees pass.
    again = suite_run(up, tmp_path / "again", SELECT)
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output[-3000:]
