"""A SIGKILLed `obsconf up` leaves its run dir and PostgreSQL's shared-memory segment behind;
the next `obsconf down` or `obsconf up` finds and removes them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from obsconf.stack.orphans import attached, postmaster
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack

UP = [sys.executable, "-m", "obsconf.reference_services.cli", "up", "--json", "--no-services"]


def _up(env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(UP, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # blocks until the stack is ready (or up ends)
    assert line, f"obsconf up printed nothing: {proc.stderr.read()}"
    return proc, Path(json.loads(line)["log_dir"]).parent


@pytest.mark.parametrize("cleaner", ["down", "up"])
def test_a_sigkilled_up_is_cleaned_by_the_next_down_or_up(tmp_path: Path, cleaner: str) -> None:
    env = {**os.environ, "OBSCONF_UP_STATE": str(tmp_path / "up")}
    killed, run_dir = _up(env)
    _, shmid = postmaster(run_dir)
    assert shmid is not None
    killed.kill()
    killed.wait()
    poll(
        lambda: attached(shmid),
        until=lambda n: n == 0,
        timeout=15,
        describe=f"the killed stack's processes to detach from segment {shmid}",
    )
    assert run_dir.exists(), "what a SIGKILL leaves behind"
    if cleaner == "down":
        done = subprocess.run(
            [sys.executable, "-m", "obsconf.conformance.cli", "down"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert str(run_dir) in done.stdout and f"segment {shmid}" in done.stdout, done.stdout
    else:
        second, second_dir = _up(env)
        second.send_signal(signal.SIGTERM)
        _, errors = second.communicate(timeout=60)
        assert second.returncode == 0 and str(run_dir) in errors, errors
        assert not second_dir.exists()
    assert not run_dir.exists()
    assert attached(shmid) is None, f"segment {shmid} left behind"
