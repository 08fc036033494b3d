"""Native implementations (the seed's Go and Rust services): built into the cache, keyed by hash.

One row of `NATIVE` per implementation: its source directory (in this repository), its lock
files, the build command and where the command leaves the binary. The key of a build is the
hash of the lock files, every source file and the build command (a changed source or flag must
not run a stale binary); the binary is kept at `<cache>/native/<name>/<hash>/<binary>` outside
the repository, so a warm machine builds nothing. Build commands run in the source directory
with `{work}` (a scratch directory kept per implementation, for incremental builds such as
cargo's target dir) in their arguments; one build per implementation at a time (a file lock),
so parallel runs share it.

Start commands reach a build with the placeholder `{build[<name>]}` (conformance/contract.py); it
builds on first use, `obsconf install` builds them all ahead, `obsconf doctor` reports them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from obsconf.stack.binaries import cache_root

REPO = Path(__file__).resolve().parents[2]  # obsconf/stack/native.py -> the checkout
KEEP_BUILDS = 3  # per implementation: the newest builds (other checkouts may use older sources)
# Directories a build writes into its source tree, never hashed.
UNHASHED_DIRS = frozenset({"target", ".git", "__pycache__"})


class NativeBuildError(RuntimeError):
    """A native build failed or its toolchain is missing; the message says how to retry."""


@dataclass(frozen=True)
class NativeBuild:
    name: str  # also the binary's name and the placeholder key: {build[name]}
    source: str  # directory relative to the repository root
    locks: tuple[str, ...]  # lock files relative to `source` (pinned dependency versions)
    command: tuple[str, ...]  # run in `source`; `{work}` is the scratch directory
    artifact: str  # the binary the command leaves, `{work}` allowed
    toolchain: str  # the executable the command needs
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def source_dir(self) -> Path:
        return REPO / self.source

    @property
    def root(self) -> Path:
        return cache_root() / "native" / self.name

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    def key(self) -> str:
        """Hash of the build command, the lock files and every source file (path, content)."""
        digest = hashlib.sha256(repr((self.command, sorted(self.env.items()))).encode())
        for lock in self.locks:
            digest.update(f"lock {lock}\n".encode())
            digest.update((self.source_dir / lock).read_bytes())
        for path in sorted(_source_files(self.source_dir)):
            digest.update(f"file {path.relative_to(self.source_dir)}\n".encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def path(self) -> Path:
        """Where the binary of the current sources lives (built or not)."""
        return self.root / self.key() / self.name

    def built(self) -> bool:
        return self.path().exists()


def _source_files(directory: Path) -> Iterator[Path]:
    for entry in sorted(directory.iterdir()):
        if entry.is_dir():
            if entry.name not in UNHASHED_DIRS:
                yield from _source_files(entry)
        elif entry.is_file():
            yield entry


# The native implementations; Rust is one more row of the same shape.
NATIVE: dict[str, NativeBuild] = {
    build.name: build
    for build in (
        NativeBuild(
            name="inventory-go",
            source="implementations/inventory-go",
            locks=("go.mod", "go.sum"),
            command=(
                "go",
                "build",
                "-trimpath",
                "-ldflags=-s -w",
                "-o",
                "{work}/inventory-go",
                ".",
            ),
            artifact="{work}/inventory-go",
            toolchain="go",
            env={"CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false"},
        ),
        NativeBuild(
            name="order-rust",
            source="implementations/order-rust",
            locks=("Cargo.lock",),
            command=("cargo", "build", "--release", "--locked", "--target-dir", "{work}/target"),
            artifact="{work}/target/release/order-service",  # Cargo.toml [[bin]] name
            toolchain="cargo",
        ),
    )
}


@contextlib.contextmanager
def _locked(build: NativeBuild) -> Iterator[None]:
    build.root.mkdir(parents=True, exist_ok=True)
    with (build.root / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(name: str, say: Callable[[str], None] | None = None) -> Path:
    """The binary of implementation `name` for the current sources, built if not cached."""
    return build_into_cache(NATIVE[name], say)


def build_into_cache(build: NativeBuild, say: Callable[[str], None] | None = None) -> Path:
    """The binary of `build` for the current sources, built if not cached."""
    name = build.name
    if build.built():
        return build.path()
    if not build.source_dir.is_dir():
        raise NativeBuildError(f"{name}: no source directory {build.source_dir}")
    if shutil.which(build.toolchain) is None:
        raise NativeBuildError(f"{name}: building needs `{build.toolchain}` on PATH")
    with _locked(build):
        target = build.path()
        if target.exists():  # built by a parallel run while we waited
            return target
        if say is not None:
            say(f"native {name}: building {build.source} (key {target.parent.name})")
        started = time.monotonic()
        build.work_dir.mkdir(parents=True, exist_ok=True)
        work = str(build.work_dir)
        command = [part.replace("{work}", work) for part in build.command]
        proc = subprocess.run(
            ["nice", "-n", "10", *command],
            cwd=build.source_dir,
            env={**os.environ, **build.env},
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise NativeBuildError(
                f"{name}: `{' '.join(command)}` failed (exit {proc.returncode}) in "
                f"{build.source_dir}:\n{tail}\nretry with: obsconf install --only {name}"
            )
        with tempfile.TemporaryDirectory(dir=build.root) as scratch:
            staged = Path(scratch) / "staged"
            staged.mkdir()
            shutil.copy2(build.artifact.replace("{work}", work), staged / name)
            os.replace(staged, target.parent)  # atomic: a half-copied dir never looks built
        _prune(build)
        if say is not None:
            say(f"native {name}: built in {time.monotonic() - started:.0f}s at {target}")
        return target


def _prune(build: NativeBuild) -> None:
    """Keep the `KEEP_BUILDS` newest builds of `build` (each holds a whole binary)."""
    builds = [d for d in build.root.iterdir() if d.is_dir() and d.name != "work"]
    builds.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for old in builds[KEEP_BUILDS:]:
        shutil.rmtree(old, ignore_errors=True)


class BuiltBinaries(Mapping[str, str]):
    """`{build[name]}` in a start command: the binary's path, built on first use."""

    def __getitem__(self, name: str) -> str:
        return str(ensure_built(name))

    def __iter__(self) -> Iterator[str]:
        return iter(NATIVE)

    def __len__(self) -> int:
        return len(NATIVE)


def status() -> list[tuple[str, str]]:
    """(name, one line) per native implementation, for `obsconf doctor`."""
    lines = []
    for build in NATIVE.values():
        if not build.source_dir.is_dir():
            lines.append((build.name, f"no sources in {build.source} (not in this checkout)"))
        elif build.built():
            lines.append((build.name, f"built [{build.path()}]"))
        else:
            lines.append(
                (build.name, f"not built for these sources: obsconf install --only {build.name}")
            )
    return lines
