"""Container images of the stack components: which image each one runs, and how to build them.

The names live in `stack/versions.toml` (`[images.upstream]`, `[images.local]`). `image_for`
resolves one component's image: a per-component override (target YAML `backends.images` or
`OBSCONF_IMAGE_<COMPONENT>`) first, then the chosen set (`OBSCONF_IMAGES=upstream|local`,
upstream by default). `obsconf.stack.images.build` builds the local set here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from obsconf.stack.binaries import versions

if TYPE_CHECKING:
    from docker import DockerClient

IMAGE_SETS = ("upstream", "local")
SET_ENV = "OBSCONF_IMAGES"


class ImagesMissing(RuntimeError):
    """Some images are neither present nor pullable; the message says how to get them."""


def component_env(component: str) -> str:
    """The environment variable that overrides one component's image."""
    return f"OBSCONF_IMAGE_{component.upper().replace('-', '_')}"


def image_set(name: str | None = None) -> str:
    """The chosen image set: `name`, else $OBSCONF_IMAGES, else upstream."""
    chosen = name or os.environ.get(SET_ENV) or "upstream"
    if chosen not in IMAGE_SETS:
        raise ValueError(f"{SET_ENV}={chosen!r}: must be one of {', '.join(IMAGE_SETS)}")
    return chosen


def image_for(
    component: str, set_name: str | None = None, overrides: Mapping[str, str] | None = None
) -> str:
    """The image reference one stack component runs."""
    if overrides and overrides.get(component):
        return overrides[component]
    if os.environ.get(component_env(component)):
        return os.environ[component_env(component)]
    table = versions()["images"][image_set(set_name)]
    if component not in table:
        raise KeyError(f"no {image_set(set_name)} image for stack component {component!r}")
    return table[component]


def image_present(client: DockerClient, ref: str) -> bool:
    """Whether the Docker engine behind `client` holds the image `ref` (no pull)."""
    import docker.errors

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True
