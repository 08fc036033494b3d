"""Choosing the stack backend: `--stack auto|local|containers|external`.

`local` runs every component as a process here, `containers` through testcontainers, `external`
starts nothing (the target's URLs or an `obsconf up --json` file say where the stack is), and
`auto` picks containers when a Docker engine answers and the chosen images are at hand, local
otherwise, and says which it picked and why.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Protocol

from obsconf.stack.endpoints import Endpoints

STACK_KINDS = ("auto", "local", "containers", "external")
STARTED_KINDS = ("auto", "local", "containers")
STACK_ENV = "OBSCONF_STACK"


class Stack(Protocol):
    endpoints: Endpoints | None
    timings: dict[str, float]

    def start(self) -> Endpoints: ...

    def stop(self) -> None: ...


def stack_kind(given: str | None, default: str = "local") -> str:
    """The requested kind: `given`, else $OBSCONF_STACK, else `default`; validated."""
    kind = given or os.environ.get(STACK_ENV) or default
    if kind not in STACK_KINDS:
        raise ValueError(f"stack kind {kind!r}: must be one of {', '.join(STACK_KINDS)}")
    return kind


def resolve_auto(images: str | None = None, overrides: Mapping[str, str] | None = None) -> str:
    """`auto`: containers when an engine answers and every image is present, else local."""
    from obsconf.stack.docker_engine import NoDockerEngine, docker_client

    try:
        client = docker_client(timeout=2.0)
    except NoDockerEngine as error:
        _say(f"--stack auto: local ({error})")
        return "local"
    try:
        from obsconf.stack.containers import stack_images
        from obsconf.stack.images import image_present

        refs = stack_images(images, overrides).values()
        absent = [ref for ref in refs if not image_present(client, ref)]
    finally:
        client.close()
    if absent:
        _say(
            f"--stack auto: local (a Docker engine answers, but image(s) {', '.join(absent)} are "
            "not present; `docker pull` them, or `obsconf images` and OBSCONF_IMAGES=local)"
        )
        return "local"
    _say("--stack auto: containers (a Docker engine answers and every image is present)")
    return "containers"


def make_stack(
    kind: str, images: str | None = None, overrides: Mapping[str, str] | None = None
) -> Stack:
    """An unstarted stack of the given kind (`auto` resolved here)."""
    if kind == "auto":
        kind = resolve_auto(images, overrides)
    if kind == "local":
        from obsconf.stack.local import LocalStack

        return LocalStack()
    if kind == "containers":
        from obsconf.stack.containers import ContainerStack

        return ContainerStack(images, overrides)
    raise ValueError(f"stack kind {kind!r} starts nothing: give the backends' URLs instead")


def _say(message: str) -> None:
    print(f"[obsconf] {message}", file=sys.stderr, flush=True)
