"""A foreign implementation (tests/foreign_impl: stdlib HTTP server, hand-made spans and
metrics) graded with one `obsconf run --target`: the harness starts it by its start commands
on a local stack, scrapes it, ships its logs, and leaves no process behind, Ctrl-C and SIGTERM
included."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from obsconf.conformance.target import load_target
from obsconf.stack.orphans import RUN_DIR_PREFIX, attached, postmaster
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "tests" / "foreign_impl" / "target.yaml"
MARK = "OBSCONF_TEST_RUN"
SELECTED = (
    "MET-TARGET-UP",
    "MET-REQUESTS-EXACT",
    "LOG-NO-LOSS",
    "LOG-FINDABLE-BY-TRACE",
    "TRC-CROSS-SERVICE-PATH",
)


def processes_of(run: str) -> dict[int, dict[str, str]]:
    """Every live process whose environment carries `MARK=run` (what a run started inherits
    it: the stack's components and the services alike), with its environment."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes()
        except OSError:
            continue
        pairs = [item.partition(b"=") for item in raw.split(b"\0") if item]
        env = {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}
        if env.get(MARK) == run:
            found[int(entry.name)] = env
    return found


def _default_sigint() -> None:
    """A run started from a background job inherits SIGINT ignored (POSIX shells do that to
    asynchronous commands); the run under test must see Ctrl-C however the tests were started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def obsconf_run(out: Path, run: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "obsconf.conformance.cli",
            "run",
            f"--target={TARGET}",
            f"--out={out}",
        ]
        + list(args),
        cwd=REPO,
        env={**os.environ, MARK: run},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
    )


def no_process_left(run: str) -> dict[int, dict[str, str]]:
    return poll(
        lambda: processes_of(run),
        until=lambda left: not left,
        timeout=15,
        describe="every process the run started to be gone",
    )


def test_the_target_starts_every_service_by_command() -> None:
    target = load_target(TARGET)
    assert all(spec.start is not None and spec.url is None for spec in target.services.values())
    assert target.labels["service"] == "app" and target.metrics["requests"] != "http_requests_total"


def test_obsconf_run_starts_grades_and_stops_the_foreign_implementation(tmp_path: Path) -> None:
    run = secrets.token_hex(6)
    proc = obsconf_run(tmp_path, run, "-k", " or ".join(SELECTED))
    output, _ = proc.communicate(timeout=240)
    results = json.loads((tmp_path / "results.json").read_text())
    outcomes = {g["id"]: g["outcome"] for g in results["guarantees"]}
    assert outcomes == dict.fromkeys(SELECTED, "passed"), output[-3000:]
    assert proc.returncode == 0, output[-3000:]
    assert results["target"] == "foreign-python"
    assert not processes_of(run), "processes of the run outlived it"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_the_foreign_implementation_and_the_stack(
    tmp_path: Path, signum: int
) -> None:
    run = secrets.token_hex(6)
    proc = obsconf_run(tmp_path, run, "-k", "LOAD")
    try:

        def healthy_services() -> list[int]:
            services = [
                env
                for env in processes_of(run).values()
                if env.get("OBSCONF_ROLE") and env.get("OBSCONF_PORT")
            ]
            ports = {env["OBSCONF_PORT"] for env in services}
            return [
                p
                for p in ports
                if httpx.get(f"http://127.0.0.1:{p}/health", timeout=2).status_code == 200
            ]

        poll(
            healthy_services,
            until=lambda ports: len(ports) == 3,
            timeout=90,
            describe="the three foreign services to answer /health",
        )
        assert len(processes_of(run)) > 3, "the stack's components carry the mark too"
        run_dir = _run_dir_of(run)
        shmid = postmaster(run_dir)[1]
        assert shmid is not None and attached(shmid) is not None, "PostgreSQL's segment"
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output[-2000:]
    assert not no_process_left(run)
    assert not run_dir.exists(), f"{run_dir} left behind: {output[-3000:]}"
    assert attached(shmid) is None, f"shared-memory segment {shmid} left behind"
    results = json.loads((tmp_path / "results.json").read_text())  # the report of what ran
    assert results["target"] == "foreign-python" and (tmp_path / "report.html").exists()


def _run_dir_of(run: str) -> Path:
    """The local stack's run dir of a run, from its PostgreSQL's command line."""
    for pid in processes_of(run):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            text = arg.decode(errors="replace")
            if RUN_DIR_PREFIX in text and text.endswith("/postgres/data"):
                return Path(text).parent.parent
    raise AssertionError(f"no PostgreSQL of run {run} found")
