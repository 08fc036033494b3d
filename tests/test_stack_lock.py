"""A started stack is owned by one run at a time (stack/runlock.py).

The lock itself (no stack): refused while held, naming the holder; free again once released or
once its holder is killed; open_system refuses a held stack before it sends anything. Then the
real thing: two runs on one `obsconf up` stack.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from obsconf.conformance.system import STARTUP_ERRORS, open_system
from obsconf.conformance.target import load_target
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.runlock import LOCK_FILE, StackBusy, acquire, lock_path, lock_stack
from obsconf.stack.waiting import StopPolling, poll

REPO = Path(__file__).resolve().parents[1]
HOLDER = (
    "import sys; from pathlib import Path; from obsconf.stack.runlock import acquire\n"
    "lock = acquire(Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()"
)


def endpoints(url: str = "http://127.0.0.1:9", run_dir: str = "") -> Endpoints:
    return Endpoints(
        prometheus=url,
        logs=url,
        traces=url,
        otlp=url,
        postgres="postgresql://u:p@127.0.0.1:9/db",
        mongodb="mongodb://127.0.0.1:9",
        nats="nats://127.0.0.1:9",
        log_dir=f"{run_dir}/service-logs" if run_dir else "",
        scrape_dir=f"{run_dir}/scrape-targets" if run_dir else "",
        run_dir=run_dir,
    )


def free_now(path: Path) -> bool:
    """Whether the lock at `path` can be taken (it is released again at once)."""
    try:
        acquire(path).release()
    except StackBusy:
        return False
    return True


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock at tmp_path/run.lock until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / LOCK_FILE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "locked\n"  # it prints once it holds the lock
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_held_lock_refuses_a_second_taker_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / LOCK_FILE
    with acquire(path) as first:
        assert first.held
        with pytest.raises(StackBusy) as refused:
            acquire(path, "the stack of ep.json")
        message = str(refused.value)
        assert "\n" not in message
        assert message.startswith("the stack of ep.json is in use by another run: ")
        assert f"pid {os.getpid()} (" in message and "pytest" in message and "started 2" in message
        assert "wait for it to end, or start another stack (`obsconf up --json" in message
    assert not first.held
    assert path.read_text() == "", "a free lock names no holder"
    assert free_now(path)


def test_the_lock_is_free_again_once_its_holder_is_killed(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    path = tmp_path / LOCK_FILE
    assert json.loads(path.read_text())["pid"] == holder.pid
    with pytest.raises(StackBusy, match=rf"in use by another run: pid {holder.pid} \(.* -c "):
        acquire(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    poll(lambda: free_now(path), timeout=10, describe="the lock to be free after SIGKILL")


def test_where_the_lock_lives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    assert lock_path(endpoints(run_dir=str(run_dir))) == run_dir / LOCK_FILE
    monkeypatch.setenv("OBSCONF_CACHE", str(tmp_path / "cache"))
    hand_written = lock_path(endpoints())  # no run dir: keyed by the stack's URLs
    assert hand_written.parent == tmp_path / "cache" / "locks"
    assert hand_written == lock_path(endpoints())
    assert hand_written != lock_path(endpoints("http://127.0.0.1:10"))
    with lock_stack(endpoints()), pytest.raises(StackBusy, match="in use by another run"):
        lock_stack(endpoints())
    with pytest.raises(StackBusy, match=rf"is not running: its run dir {run_dir} is gone"):
        lock_stack(endpoints(run_dir=str(run_dir)))
    assert not run_dir.exists(), "a gone stack's run dir is not made again"


def test_open_system_refuses_a_held_stack_before_sending_anything(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with socket.socket() as backend:  # every URL of the stack: it must see no connection
        backend.bind(("127.0.0.1", 0))
        backend.listen()
        backend.setblocking(False)
        url = f"http://127.0.0.1:{backend.getsockname()[1]}"
        file = tmp_path / "ep.json"
        file.write_text(json.dumps(endpoints(url, str(tmp_path)).as_dict()))
        with pytest.raises(StackBusy, match=rf"the stack of {file} .* pid {holder.pid} ") as e:
            open_system(load_target(REPO / "targets" / "reference.yaml"), stack_endpoints=file)
        assert isinstance(e.value, STARTUP_ERRORS), "reported as a start-up error, not a FAIL"
        with pytest.raises(BlockingIOError):
            backend.accept()


# --- live: two runs on one `obsconf up` stack ------------------------------------------------


def suite_run(endpoints_file: Path, out: Path, select: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "obsconf.reference_services.cli", "run"),
            *(f"--stack-endpoints={endpoints_file}", f"--out={out}", "-k", select),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )


def holds(lock: Path, run: subprocess.Popen[str]) -> bool:
    """Whether `run` has taken the lock (it writes its pid into it)."""
    if run.poll() is not None:
        raise StopPolling(f"the run ended (exit {run.returncode}) before it was seen locking")
    try:
        return bool(json.loads(lock.read_text() or "{}").get("pid") == run.pid)
    except (OSError, ValueError):
        return False


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Path]:
    """An `obsconf up --json --no-services` stack; its endpoints file. Stopped afterwards, and
    its run dir must be gone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "obsconf.reference_services.cli", "up", "--json", "--no-services"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    run_dir = None
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()  # once the stack is ready (or the process ended)
        assert line, f"no endpoints printed; stderr: {proc.stderr.read()}"
        run_dir = Path(json.loads(line)["run_dir"])
        file = tmp_path / "endpoints.json"
        file.write_text(line)
        yield file
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not run_dir.exists(), "the lock went with the stack's run dir"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# long enough (services start, a scrape, a flow) for a second run to arrive while it holds
SELECT = "MET-TARGET-UP or PROP-REQUEST-ID-ECHOED or MET-REQUESTS-EXACT"


@pytest.mark.stack
def test_a_second_run_on_a_started_stack_is_refused_and_the_first_is_unaffected(
    tmp_path: Path, up: Path
) -> None:
    lock = Path(json.loads(up.read_text())["run_dir"]) / LOCK_FILE
    first = suite_run(up, tmp_path / "first", SELECT)
    try:
        poll(lambda: holds(lock, first), timeout=60, describe="the first run to take the lock")
        second = suite_run(up, tmp_path / "second", SELECT)
        output, _ = second.communicate(timeout=120)
        assert first.poll() is None, "the first run still ran when the second was refused"
        assert second.returncode not in (0, 1), output[-3000:]  # no verdict, never a FAIL
        assert f"the stack of {up} is in use by another run: pid {first.pid} (" in output
        assert "started 2" in output and "wait for it to end, or start another stack" in output
        second_results = json.loads((tmp_path / "second" / "results.json").read_text())
        assert second_results["verdict"]["status"] == "INCOMPLETE"
        assert not any(g["outcome"] == "failed" for g in second_results["guarantees"])

        output, _ = first.communicate(timeout=300)
        assert first.returncode == 0, output[-3000:]
        results = json.loads((tmp_path / "first" / "results.json").read_text())
        assert {g["id"]: g["outcome"] for g in results["guarantees"]} == dict.fromkeys(
            SELECT.split(" or "), "passed"
        )
        assert free_now(lock), "free once the first run ended"

        killed = suite_run(up, tmp_path / "killed", SELECT)
        try:
            poll(lambda: holds(lock, killed), timeout=60, describe="the next run to lock")
            assert not free_now(lock)
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.communicate(timeout=30)
        poll(lambda: free_now(lock), timeout=10, describe="the lock to be free after SIGKILL")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
