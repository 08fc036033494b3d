"""The container backend: clear errors, full cleanup, and the cross-NATS trace guarantees on it.

These need a Docker engine with the stack's images (here: `obsconf images`, OBSCONF_IMAGES=local).
Without an engine the engine-dependent tests skip, unless OBSCONF_REQUIRE_CONTAINERS=1 (CI).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from obsconf.conformance.catalog import catalog
from obsconf.reference_services.negative_controls import broken_by, run_suite
from obsconf.stack.backends import Stack, resolve_auto
from obsconf.stack.containers import LABEL_PID, LABEL_STACK, ContainerStack, sweep
from obsconf.stack.docker_engine import NoDockerEngine, docker_client
from obsconf.stack.images import image_for
from obsconf.stack.local import ComponentFailed

REPO = Path(__file__).resolve().parent.parent
NO_ENGINE = "unix:///nonexistent/obsconf-test.sock"
pytestmark = pytest.mark.timeout(600)  # a hung engine must fail the test, not stall CI
TRACE_IDS = [gid for gid in catalog() if gid.startswith("TRC-")]
LOG_IDS = [gid for gid in catalog() if gid.startswith("LOG-")]


def _labelled(client, key: str, value: str) -> list[str]:
    flt = {"label": f"{key}={value}"}
    containers = [c.name for c in client.containers.list(all=True, filters=flt)]
    return containers + [f"network {n.name}" for n in client.networks.list(filters=flt)]


@pytest.fixture
def engine(container_stack: Stack) -> Iterator:
    """A Docker client (the session's container stack proves an engine and images exist)."""
    client = docker_client()
    try:
        yield client
    finally:
        client.close()


# -- errors without an engine ---------------------------------------------------------------


def test_no_engine_is_one_clear_error_naming_the_socket_and_the_alternative(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    stack = ContainerStack()
    with pytest.raises(NoDockerEngine) as error:
        stack.start()
    message = str(error.value)
    assert NO_ENGINE in message and "--stack local" in message and "dockerd" in message
    assert stack.run_dir is None and not stack.containers, "nothing may start"


def test_obsconf_up_with_containers_and_no_engine_exits_1_with_the_message() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "obsconf.reference_services.cli",
            "up",
            "--stack=containers",
            "--no-services",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "DOCKER_HOST": NO_ENGINE},
        timeout=60,
    )
    assert proc.returncode == 1
    assert "no Docker engine answers" in proc.stderr and "--stack local" in proc.stderr


def test_auto_picks_local_without_an_engine_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    assert resolve_auto() == "local"
    assert "--stack auto: local" in capsys.readouterr().err


def test_image_names_come_from_one_table_with_env_and_target_overrides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OBSCONF_IMAGES", raising=False)
    monkeypatch.delenv("OBSCONF_IMAGE_POSTGRES", raising=False)
    assert image_for("postgres") == "postgres:16"
    assert image_for("postgres", "local").startswith("obsconf/postgres:")
    monkeypatch.setenv("OBSCONF_IMAGE_POSTGRES", "postgres:17")
    assert image_for("postgres") == "postgres:17"
    assert image_for("postgres", overrides={"postgres": "my/pg:1"}) == "my/pg:1"


# -- with an engine ---------------------------------------------------------------------------


def test_auto_picks_containers_when_the_engine_and_images_are_there(
    engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert resolve_auto() == "containers"
    assert "--stack auto: containers" in capsys.readouterr().err


def test_a_container_that_fails_its_wait_is_named_with_its_logs_and_all_is_removed(
    engine,
) -> None:
    # The log store's image replaced by the NATS image: nats-server rejects the log store's
    # flags and exits, so the wait fails on a real container with real output.
    stack = ContainerStack(image_overrides={"logs": image_for("nats")})
    with pytest.raises(ComponentFailed) as failure:
        stack.start()
    message = str(failure.value)
    assert "'victoria-logs'" in message and "exited with code" in message
    assert "Show version" in message, "the container's own output (nats usage) must be in it"
    assert _labelled(engine, LABEL_STACK, stack.run_id) == [], "containers/network left behind"


def test_sweep_removes_containers_whose_owner_process_is_gone(engine) -> None:
    dead_pid = "2147483646"
    engine.containers.create(
        image_for("nats"), labels={LABEL_STACK: "orphan-test", LABEL_PID: dead_pid}
    )
    assert _labelled(engine, LABEL_STACK, "orphan-test")
    removed = sweep(engine)
    assert any("orphan-test" in name or name for name in removed)
    assert _labelled(engine, LABEL_STACK, "orphan-test") == []


def test_obsconf_up_on_containers_leaves_nothing_after_sigint(engine) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "obsconf.reference_services.cli",
            "up",
            "--stack=containers",
            "--no-services",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        line = proc.stdout.readline()
        assert line, f"obsconf up printed nothing: {proc.stderr.read()[-2000:]}"
        info = json.loads(line)
        assert info["kinds"]["stack"] == "containers"
        assert _labelled(engine, LABEL_PID, str(proc.pid)), "its containers are running"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _labelled(engine, LABEL_PID, str(proc.pid)) == []


# -- the cross-NATS trace guarantees on the container backend --------------------------------


@pytest.fixture(scope="module")
def container_endpoints_file(
    container_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("containers") / "endpoints.json"
    path.write_text(json.dumps(container_stack.endpoints.as_dict()))
    return path


def test_trace_guarantees_hold_on_the_container_backend(container_endpoints_file: Path) -> None:
    results = run_suite("", container_endpoints_file, select="TRC")
    outcomes = {g["id"]: (g["outcome"], g["message"][:300]) for g in results["guarantees"]}
    assert {gid: o for gid, o in outcomes.items() if o[0] != "passed"} == {}
    assert set(outcomes) == set(TRACE_IDS)


@pytest.mark.parametrize("target", ["reference", "reference-otlp-logs"])
def test_log_guarantees_hold_on_the_container_backends_collector(
    container_endpoints_file: Path, target: str
) -> None:
    """Lines from the tailed files and OTLP log records both reach the log store through the
    collector container."""
    target_file = REPO / "targets" / f"{target}.yaml"
    results = run_suite("", container_endpoints_file, target=target_file, select="LOG")
    outcomes = {g["id"]: (g["outcome"], g["message"][:300]) for g in results["guarantees"]}
    assert {gid: o for gid, o in outcomes.items() if o[0] != "passed"} == {}
    assert {gid for gid in outcomes if gid.startswith("LOG-")} == set(LOG_IDS)


def test_a_broken_nats_hop_is_caught_on_the_container_backend(
    container_endpoints_file: Path,
) -> None:
    results = run_suite("no-inject", container_endpoints_file, select="TRC")
    failed = {g["id"] for g in results["guarantees"] if g["outcome"] == "failed"}
    expected = {g.id for g in broken_by("no-inject") if g.id.startswith("TRC-")}
    assert failed == expected
