"""`obsconf install`: idempotent install of every stack component.

Debian packages come from apt; VictoriaLogs, Jaeger and FerretDB are built with the machine's Go
at the versions pinned in `versions.toml`, the OpenTelemetry Collector with the collector
builder from the modules pinned there, into a cache outside the repository keyed by name and
version. Go's own module and build caches are reused, so a warm second run does nothing. The
native implementations of this repository (stack/native.py: the Go inventory and Rust order
services) are built into the same cache keyed by the hash of their lock files and sources.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from obsconf.stack import native
from obsconf.stack.binaries import CollectorBuild, GoBuild, apt_packages, collector_build, go_builds


class InstallError(RuntimeError):
    """One install step failed; the message names the step and the command to retry."""


def _say(message: str) -> None:
    print(f"[install] {message}", flush=True)


def _run(step: str, command: Sequence[str], retry: str, env: dict[str, str] | None = None) -> None:
    """Run one step's command; on failure raise with its output tail and the retry command."""
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise InstallError(
            f"step '{step}' failed (exit {proc.returncode}): {' '.join(command)}\n{tail}\n"
            f"retry with: {retry}"
        )


def _dpkg_installed(package: str) -> bool:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return proc.returncode == 0 and "install ok installed" in proc.stdout


def install_apt(packages: Sequence[str]) -> None:
    """Install the Debian packages not yet installed (one apt-get call)."""
    missing = [p for p in packages if not _dpkg_installed(p)]
    for package in packages:
        if package not in missing:
            _say(f"apt {package}: installed")
    if not missing:
        return
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    retry = f"{' '.join(prefix + ['apt-get', 'install', '-y'] + missing)}"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _say(f"apt {', '.join(missing)}: installing")
    start = time.monotonic()
    _run("apt-get update", prefix + ["apt-get", "update", "-q"], retry, env)
    _run(
        f"apt-get install {' '.join(missing)}",
        prefix + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        retry,
        env,
    )
    _say(f"apt {', '.join(missing)}: done in {time.monotonic() - start:.0f}s")


def _module_source(build: GoBuild, env: dict[str, str]) -> Path:
    """Download the pinned module (Go's module cache) and return its read-only source dir."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{build.module}@{build.version}"],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise InstallError(
            f"step 'go mod download {build.module}@{build.version}' failed:\n"
            f"{proc.stdout}{proc.stderr}\nretry with: obsconf install --only {build.name}"
        )
    return Path(json.loads(proc.stdout)["Dir"])


def install_go(build: GoBuild) -> None:
    """Build one Go component into its cache dir, unless that version is there already.

    The module is built as the main module from a copy of its source, so its own `replace`
    directives apply (`go install pkg@version` refuses modules that have any).
    """
    if build.path.exists():
        _say(f"go {build.name} {build.version}: cached at {build.path}")
        return
    if shutil.which("go") is None:
        raise InstallError(
            f"step 'go build {build.name}' needs the Go toolchain, and `go` is not on PATH"
        )
    _say(f"go {build.name} {build.version}: building (minutes on 2 cores)")
    start = time.monotonic()
    build.install_dir.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-trimpath")
    source = _module_source(build, env)
    with tempfile.TemporaryDirectory(dir=build.install_dir.parent) as scratch:
        tree = Path(scratch) / "src"
        shutil.copytree(source, tree)
        for path in [tree, *tree.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        for relative_path, content in build.files.items():
            (tree / relative_path).write_text(content + "\n")
        staged = Path(scratch) / "staged"
        relative = "./" + build.package.removeprefix(build.module).lstrip("/")
        _run(
            f"go build {build.name} {build.version}",
            ["go", "-C", str(tree), "build", "-o", str(staged / build.binary), relative],
            f"obsconf install --only {build.name}",
            env,
        )
        os.replace(staged, build.install_dir)  # atomic: a half-built dir never looks cached
    _say(f"go {build.name} {build.version}: built in {time.monotonic() - start:.0f}s")


def install_collector(build: CollectorBuild) -> None:
    """Build the OpenTelemetry Collector with the collector builder, unless it is cached."""
    if build.path.exists():
        _say(f"collector {build.release}: cached at {build.path}")
        return
    if shutil.which("go") is None:
        raise InstallError(
            "step 'build the collector' needs the Go toolchain, and `go` is not on PATH"
        )
    _say(f"collector {build.release}: building with {build.builder} (about 2 min on 2 cores)")
    start = time.monotonic()
    build.install_dir.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-trimpath")
    retry = f"obsconf install --only {build.name}"
    with tempfile.TemporaryDirectory(dir=build.install_dir.parent) as scratch:
        tools = Path(scratch) / "tools"
        _run(
            "go install the collector builder",
            ["go", "install", build.builder],
            retry,
            dict(env, GOBIN=str(tools)),
        )
        manifest = Path(scratch) / "manifest.yaml"
        manifest.write_text(yaml.safe_dump(build.manifest(Path(scratch) / "dist")))
        _run("collector builder", [str(tools / "builder"), f"--config={manifest}"], retry, env)
        staged = Path(scratch) / "staged"
        staged.mkdir()
        os.replace(Path(scratch) / "dist" / build.binary, staged / build.binary)
        os.replace(staged, build.install_dir)  # atomic: a half-built dir never looks cached
    _say(f"collector {build.release}: built in {time.monotonic() - start:.0f}s")


def install_native(only: Sequence[str] = ()) -> None:
    """Build the native implementations whose sources are here (a toolchain that is missing
    only skips its implementations, with a note: the stack does not need them)."""
    for build in native.NATIVE.values():
        if only and build.name not in only:
            continue
        if not build.source_dir.is_dir():
            continue
        if build.built():
            _say(f"native {build.name}: cached at {build.path()}")
            continue
        if shutil.which(build.toolchain) is None and not only:
            _say(f"native {build.name}: skipped, `{build.toolchain}` is not on PATH")
            continue
        try:
            native.ensure_built(build.name, _say)
        except native.NativeBuildError as error:
            raise InstallError(str(error)) from None


def install(only: Sequence[str] = (), containers: bool = False, with_native: bool = True) -> None:
    """Install everything (or only the named components); `containers` adds the engine;
    `with_native` builds the native implementations too."""
    start = time.monotonic()
    apt = apt_packages(containers)
    packages = [pkg for name, pkg in apt.items() if not only or name in only]
    if packages:
        install_apt(sorted(set(packages)))
    for build in go_builds():
        if not only or build.name in only:
            install_go(build)
    collector = collector_build()
    if not only or collector.name in only:
        install_collector(collector)
    if with_native:
        install_native(only)
    _say(f"all done in {time.monotonic() - start:.1f}s")


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="obsconf install", description=__doc__)
    parser.add_argument("--only", action="append", default=[], help="component name")
    parser.add_argument(
        "--containers",
        action="store_true",
        help="also the container backend's Debian packages (docker.io, debootstrap)",
    )
    parser.add_argument(
        "--no-native",
        action="store_true",
        help="skip building the native implementations (Go inventory, Rust order)",
    )
    args = parser.parse_args(argv)
    try:
        install(args.only, args.containers, not args.no_native)
    except InstallError as error:
        print(f"[install] FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
