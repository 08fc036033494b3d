"""Stack lifecycle: clear errors before anything starts, full teardown on every exit path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from obsconf.stack import binaries
from obsconf.stack.binaries import MissingBinary
from obsconf.stack.local import ComponentFailed, LocalStack
from obsconf.stack.waiting import PollTimeout, poll


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") < 0
    except FileNotFoundError:
        return False


def test_poll_timeout_says_what_was_seen_and_expected() -> None:
    with pytest.raises(PollTimeout, match=r"waiting for answer == 42; last seen: 7"):
        poll(lambda: 7, until=lambda v: v == 42, timeout=0.3, describe="answer == 42")


def test_missing_binary_is_named_with_the_install_command_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSCONF_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(binaries, "EXTRA_DIRS", ())
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH either
    stack = LocalStack(run_dir=tmp_path / "run")
    with pytest.raises(MissingBinary, match=r"victoria-logs.*obsconf install"):
        stack.start()
    assert not (tmp_path / "run").exists(), "nothing may start when a binary is missing"


@pytest.mark.stack
def test_a_failing_component_is_named_with_its_log_and_everything_else_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from obsconf.stack import components

    broken = components.Component(
        name="prometheus",
        binary="prometheus",
        ports=("prometheus",),
        argv=lambda ctx: [str(ctx.binaries["prometheus"]), "--no-such-flag"],
        ready=lambda ctx: False,
    )
    order = tuple(broken if c.name == "prometheus" else c for c in components.ALL)
    monkeypatch.setattr("obsconf.stack.local.ALL", order)
    stack = LocalStack()
    started: list[int] = []
    original_launch = stack._launch

    def recording_launch(component, ctx):  # test spy
        original_launch(component, ctx)
        started.append(stack.processes[component.name].pid)

    monkeypatch.setattr(stack, "_launch", recording_launch)
    with pytest.raises(ComponentFailed) as failure:
        stack.start()
    message = str(failure.value)
    assert "'prometheus'" in message and "no-such-flag" in message
    assert started, "components were launched before the failure"
    poll(
        lambda: [p for p in started if _alive(p)],
        until=lambda alive: not alive,
        timeout=15,
        describe="every launched component to be stopped",
    )


@pytest.mark.stack
def test_up_json_prints_endpoints_and_sigterm_stops_everything() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "obsconf.reference_services.cli", "up", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # blocks until ready (or the process ends)
        assert line, f"no endpoints printed; stderr: {proc.stderr.read()}"
        info = json.loads(line)
        for key in ("prometheus", "logs", "traces", "otlp", "postgres", "mongodb", "nats"):
            assert info[key], key
        assert set(info["services"]) == {"user-service", "order-service", "inventory-service"}
        run_dir = Path(info["log_dir"]).parent
        children = _descendants(proc.pid)
        assert len(children) >= 10, children  # 7 stack components + 3 services
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        poll(
            lambda: [p for p in children if _alive(p)],
            until=lambda alive: not alive,
            timeout=15,
            describe="no stack process left after SIGTERM",
        )
        assert not run_dir.exists(), "run dir removed at teardown"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.stack
def test_two_ups_run_side_by_side_and_stop_independently(tmp_path: Path) -> None:
    env = {**os.environ, "OBSCONF_UP_STATE": str(tmp_path / "up")}
    command = [sys.executable, "-m", "obsconf.reference_services.cli", "up", "--json", "--no-services"]
    ups: list[subprocess.Popen[str]] = []

    def down(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "obsconf.conformance.cli", "down", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=90,
        )

    try:
        infos = []
        for _ in range(2):  # one after the other: two stacks picking free ports at once may race
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            ups.append(proc)
            line = proc.stdout.readline()
            assert line, f"no endpoints printed; stderr: {proc.stderr.read()[-2000:]}"
            infos.append(json.loads(line))
        first, second = ups
        assert infos[0]["prometheus"] != infos[1]["prometheus"]
        assert sorted(p.name for p in (tmp_path / "up").iterdir()) == sorted(
            f"{p.pid}.json" for p in ups
        )
        refused = down()
        assert refused.returncode == 2, refused.stderr
        assert all(f"pid {p.pid}: local stack" in refused.stderr for p in ups), refused.stderr
        assert first.poll() is None and second.poll() is None, "a refused down stops nothing"
        stopped = down(str(first.pid))
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert first.wait(timeout=60) == 0
        assert not Path(infos[0]["log_dir"]).parent.exists(), "first run dir removed"
        assert second.poll() is None, "the other stack keeps running"
        assert httpx.get(f"{infos[1]['prometheus']}/-/ready", timeout=5).status_code == 200
        assert [p.name for p in (tmp_path / "up").iterdir()] == [f"{second.pid}.json"]
        assert down("--all").returncode == 0
        assert second.wait(timeout=60) == 0
        assert not list((tmp_path / "up").iterdir())
    finally:
        for proc in ups:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    parents: dict[int, list[int]] = {}
    for row in out.splitlines():
        child, parent = (int(x) for x in row.split())
        parents.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_second_install_run_on_a_warm_machine_does_nothing() -> None:
    if any(binaries.find(b.binary) is None for b in binaries.go_builds()):
        pytest.fail("stack components not installed: run `obsconf install` first")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "obsconf.stack.install"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "building" not in proc.stdout and "installing" not in proc.stdout, proc.stdout
    assert time.monotonic() - started < 30
