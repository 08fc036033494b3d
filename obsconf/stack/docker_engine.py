"""The Docker engine: whether one answers, and the one error that says how to get one."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import docker

START_HINT = (
    "start one (here: `apt-get install docker.io && dockerd --storage-driver=vfs &`; "
    "elsewhere: `systemctl start docker` or Docker Desktop), or use `--stack local`"
)


class NoDockerEngine(RuntimeError):
    """No Docker engine answers; the message says where we asked and what to do."""


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def docker_client(timeout: float = 5.0) -> docker.DockerClient:
    """A client of a Docker engine that answered a ping, or NoDockerEngine."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=int(max(timeout, 1)))
        client.ping()
    except (DockerException, OSError) as error:
        raise NoDockerEngine(
            f"no Docker engine answers at {engine_address()} ({_short(error)}): {START_HINT}"
        ) from None
    return client


def engine_answers(timeout: float = 2.0) -> bool:
    """True when a Docker engine answers a ping (used by `--stack auto`)."""
    try:
        docker_client(timeout).close()
    except NoDockerEngine:
        return False
    return True


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
