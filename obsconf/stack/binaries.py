"""Where each stack component's executable lives, and whether it is installed."""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.toml")
# Debian installs some server binaries outside PATH.
EXTRA_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/sbin", "/usr/bin")
INSTALL_HINT = "obsconf install"


@cache
def versions() -> dict:
    """The pinned versions file, parsed."""
    return tomllib.loads(VERSIONS_FILE.read_text())


def cache_root() -> Path:
    """Root of the binary cache, outside the repository (OBSCONF_CACHE overrides)."""
    default = Path.home() / ".cache" / "obsconf"
    return Path(os.environ.get("OBSCONF_CACHE", default))


@dataclass(frozen=True)
class GoBuild:
    """A component built from a Go module at a pinned version."""

    name: str
    module: str
    package: str
    version: str
    binary: str
    files: dict[str, str] = field(default_factory=dict)  # written into the source tree first

    @property
    def install_dir(self) -> Path:
        return cache_root() / "bin" / f"{self.name}-{self.version}"

    @property
    def path(self) -> Path:
        return self.install_dir / self.binary


def go_builds() -> list[GoBuild]:
    """Every Go-built component, in build order (smallest first)."""
    return [GoBuild(name=name, **spec) for name, spec in versions()["go"].items()]


@dataclass(frozen=True)
class CollectorBuild:
    """The OpenTelemetry Collector, built by the collector builder from pinned modules."""

    release: str
    builder: str  # module@version of the builder
    binary: str
    modules: dict[str, list[str]]  # kind (receivers, processors, exporters) -> "module version"
    name: str = "otelcol"

    @property
    def install_dir(self) -> Path:
        return cache_root() / "bin" / f"{self.name}-{self.release}"

    @property
    def path(self) -> Path:
        return self.install_dir / self.binary

    def manifest(self, output_path: Path) -> dict:
        """The builder's manifest: the distribution and its components."""
        dist = {
            "name": self.binary,
            "version": self.release,
            "description": "obsconf log path",
            "output_path": str(output_path),
        }
        return {
            "dist": dist,
            **{kind: [{"gomod": m} for m in mods] for kind, mods in self.modules.items()},
        }


def collector_build() -> CollectorBuild:
    spec = dict(versions()["collector"])
    kinds = ("receivers", "processors", "exporters")
    modules = {kind: list(spec.pop(kind)) for kind in kinds}
    return CollectorBuild(modules=modules, **spec)


def apt_packages(containers: bool = False) -> dict[str, str]:
    """Debian binary name -> package name (with the container backend's, if asked)."""
    return {**versions()["apt"], **(versions()["apt_containers"] if containers else {})}


class MissingBinary(RuntimeError):
    """A component's executable is not installed."""


def find(binary: str) -> Path | None:
    """Path of an executable: the Go build cache first, then PATH and Debian's server dirs."""
    builds: list[GoBuild | CollectorBuild] = [*go_builds(), collector_build()]
    for build in builds:
        if build.binary == binary and build.path.exists():
            return build.path
    found = shutil.which(binary)
    if found:
        return Path(found)
    for directory in EXTRA_DIRS:
        candidate = Path(directory) / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def require(*binaries: str) -> dict[str, Path]:
    """Paths of all binaries, or one error naming every missing one and the install command."""
    found = {name: find(name) for name in binaries}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        raise MissingBinary(
            f"missing stack component(s): {', '.join(missing)}; install them with `{INSTALL_HINT}`"
            " (then check with `obsconf doctor`)"
        )
    return {name: path for name, path in found.items() if path is not None}
