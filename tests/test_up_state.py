"""Several `obsconf up` at once: one state file each; `obsconf down` picks, refuses or stops all.

Stand-in processes (`sleep`) play the `obsconf up` processes here; the real thing, two stacks,
is in tests/test_stack_lifecycle.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from obsconf.conformance import cli
from obsconf.stack import upstate


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "up"
    monkeypatch.setenv(upstate.STATE_ENV, str(directory))
    monkeypatch.setattr("obsconf.stack.docker_engine.engine_answers", lambda: False)
    return directory


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def fake_up(
    state: Path, sleepers: list[subprocess.Popen[bytes]], start: str | None = None
) -> subprocess.Popen[bytes]:
    """A process standing in for an `obsconf up`, with its state file."""
    proc = subprocess.Popen(["sleep", "120"])
    sleepers.append(proc)
    state.mkdir(parents=True, exist_ok=True)
    info = {
        "pid": proc.pid,
        "process_start": start or upstate.process_start(proc.pid),
        "prometheus": f"http://127.0.0.1:{proc.pid}",
        "traces": f"http://127.0.0.1:{proc.pid + 1}",
        "kinds": {"stack": "local"},
        "services": {},
        "started_at": "2025-01-01 00:00:00",
    }
    (state / f"{proc.pid}.json").write_text(json.dumps(info))
    return proc


def alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def test_down_refuses_when_ambiguous_and_lists_what_runs(
    state: Path, sleepers: list, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = fake_up(state, sleepers), fake_up(state, sleepers)
    assert cli.main(["down"]) == 2
    err = capsys.readouterr().err
    assert "2 `obsconf up` are running" in err and "obsconf down --all" in err
    assert f"pid {a.pid}: local stack" in err and f"pid {b.pid}: local stack" in err
    assert alive(a) and alive(b)
    assert cli.main(["trace", "0" * 32]) == 2  # which stack's trace store? it does not guess
    assert "several `obsconf up` run" in capsys.readouterr().out


def test_down_pid_stops_that_one_only(
    state: Path, sleepers: list, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = fake_up(state, sleepers), fake_up(state, sleepers)
    assert cli.main(["down", str(a.pid)]) == 0
    assert a.wait(timeout=5) == -15  # SIGTERM
    assert f"stopped {a.pid}" in capsys.readouterr().out
    assert alive(b)
    assert sorted(p.name for p in state.iterdir()) == [f"{b.pid}.json"]
    assert cli.main(["down", str(a.pid)]) == 1  # no longer running
    assert f"no running `obsconf up` has pid {a.pid}" in capsys.readouterr().err
    assert cli.main(["down"]) == 0  # the only one left: no need to name it
    assert b.wait(timeout=5) == -15
    assert not list(state.iterdir())


def test_down_all_stops_every_one(state: Path, sleepers: list) -> None:
    procs = [fake_up(state, sleepers) for _ in range(3)]
    assert cli.main(["down", "--all"]) == 0
    assert [p.wait(timeout=5) for p in procs] == [-15, -15, -15]
    assert not list(state.iterdir())


def test_stale_entries_are_removed_and_never_signalled(
    state: Path, sleepers: list, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = fake_up(state, sleepers)
    gone.kill()
    gone.wait()
    reused = fake_up(state, sleepers, start="1")  # the pid now belongs to another program
    (state / "garbage.json").write_text("{")
    running = fake_up(state, sleepers)
    listed, stale = upstate.entries()
    assert [e.pid for e in listed] == [running.pid]
    assert sorted(e.pid for e in stale) == sorted([gone.pid, reused.pid])
    assert sorted(p.name for p in state.iterdir()) == [f"{running.pid}.json"]
    fake_up(state, sleepers, start="1")
    assert cli.main(["down"]) == 0  # one running: stopped; the stale one only cleaned
    assert "removed the state of" in capsys.readouterr().out
    assert running.wait(timeout=5) == -15
    assert alive(reused), "a reused pid is not ours to signal"


def test_nothing_running(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["down"]) == 0
    assert "no running `obsconf up` found" in capsys.readouterr().out


def test_an_up_records_and_forgets_its_own_state(state: Path) -> None:
    probe = (
        "import json, os; from stack import upstate; p = upstate.record({'traces': 'http://t'});"
        "print(json.dumps([str(p), [e.pid for e in upstate.entries()[0]], os.getpid()]));"
        "upstate.forget()"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,  # OBSCONF_UP_STATE: set by the fixture
    ).stdout
    path, listed, pid = json.loads(out)
    assert Path(path) == state / f"{pid}.json" and listed == [pid]
    assert not Path(path).exists()
