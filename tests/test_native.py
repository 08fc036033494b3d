"""Native implementations built into the cache: keyed by lock files and sources, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from obsconf.conformance.contract import TemplateError, placeholders_in, render
from obsconf.stack import native
from obsconf.stack.native import NATIVE, NativeBuild, build_into_cache


def _row(source: Path) -> NativeBuild:
    """A build whose 'compiler' is sh: it appends to a counter so a test sees every run."""
    return NativeBuild(
        name="tiny",
        source=str(source),
        locks=("tiny.lock",),
        command=("sh", "-c", "echo run >> {work}/runs && cp main.sh {work}/tiny"),
        artifact="{work}/tiny",
        toolchain="sh",
    )


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NativeBuild:
    monkeypatch.setenv("OBSCONF_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "src"
    source.mkdir()
    (source / "tiny.lock").write_text("dep 1.0\n")
    (source / "main.sh").write_text("#!/bin/sh\necho hello\n")
    return _row(source)


def test_a_warm_cache_builds_nothing(tiny: NativeBuild) -> None:
    first = build_into_cache(tiny)
    assert first == tiny.path() and first.read_text().endswith("echo hello\n")
    assert build_into_cache(tiny) == first
    assert (tiny.work_dir / "runs").read_text().count("run") == 1


def test_the_key_follows_lock_files_and_sources_not_build_output(tiny: NativeBuild) -> None:
    key = tiny.key()
    (tiny.source_dir / "target").mkdir()
    (tiny.source_dir / "target" / "junk").write_text("build output")
    assert tiny.key() == key
    (tiny.source_dir / "tiny.lock").write_text("dep 1.1\n")
    assert tiny.key() != key
    key = tiny.key()
    (tiny.source_dir / "main.sh").write_text("#!/bin/sh\necho changed\n")
    assert tiny.key() != key
    assert build_into_cache(tiny).read_text().endswith("echo changed\n")


def test_only_the_newest_builds_are_kept(tiny: NativeBuild) -> None:
    paths = []
    for version in range(native.KEEP_BUILDS + 2):
        (tiny.source_dir / "main.sh").write_text(f"#!/bin/sh\necho {version}\n")
        paths.append(build_into_cache(tiny))
    assert [p.exists() for p in paths] == [False] * 2 + [True] * native.KEEP_BUILDS
    assert (tiny.work_dir / "runs").exists()  # the scratch dir is kept


def test_a_failed_build_says_how_to_retry(tiny: NativeBuild) -> None:
    broken = NativeBuild(**{**tiny.__dict__, "command": ("sh", "-c", "echo boom >&2; exit 3")})
    with pytest.raises(native.NativeBuildError, match=r"(?s)exit 3.*boom.*obsconf install"):
        build_into_cache(broken)
    assert not broken.built()


def test_every_row_has_its_lock_files() -> None:
    for build in NATIVE.values():
        if build.source_dir.is_dir():  # order-rust arrives with its own branch
            assert all((build.source_dir / lock).is_file() for lock in build.locks), build.name


def test_build_placeholder_names_a_native_implementation() -> None:
    assert placeholders_in("{build[inventory-go]}") == ["build[NAME]"]
    for bad in ("{build[nope]}", "{build}", "{build[NAME]}", "{build[inventory-go]!r}"):
        with pytest.raises(TemplateError):
            placeholders_in(bad)
    assert render("{build[x]}/bin", {"build": {"x": "/cache/x"}}) == "/cache/x/bin"
