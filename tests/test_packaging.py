"""obsconf as people install it: one `obsconf` namespace, the targets and data inside the wheel,
the pytest plugin as an entry point — proven by building the wheel, installing it into a fresh
virtual environment and running it from a directory that is not the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
FOREIGN = REPO / "tests" / "foreign_impl"
INSTALL_TIMEOUT = 900
RUN_TIMEOUT = 600


FOLDERS = ("conformance", "stack", "reports", "fixtures", "reference_services", "targets")
NOT_PACKAGES = ("tests", "bench", "docs", "deploy", "implementations", "obsconf")
REFERENCE_ONLY = ("fastapi", "sqlalchemy", "motor", "uvicorn")


def test_each_top_level_folder_is_its_package() -> None:
    """The folders the design names are links to the packages: one file, one path, one
    module name (`obsconf.conformance.target` is obsconf/conformance/target.py)."""
    for name in FOLDERS:
        link = REPO / name
        assert link.is_symlink() and link.resolve() == REPO / "obsconf" / name, name
        assert (REPO / "obsconf" / name / "__init__.py").is_file(), name


def test_only_the_packages_import_under_obsconf() -> None:
    probe = (
        "import importlib.util as u, obsconf.conformance.target as t;"
        f"print(t.__file__); print([n for n in {NOT_PACKAGES!r}"
        " if u.find_spec('obsconf.' + n)])"
    )
    out = _run([sys.executable, "-c", probe], cwd=REPO, timeout=60).stdout.splitlines()
    assert out[0] == str(REPO / "obsconf" / "conformance" / "target.py")
    assert out[1] == "[]", f"importable under obsconf, but not packages: {out[1]}"


def test_the_plugin_is_an_entry_point() -> None:
    assert PYPROJECT["project"]["entry-points"]["pytest11"] == {
        "obsconf": "obsconf.fixtures.plugin"
    }


def _run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(command)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
        f"{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"  # a copy: building in the checkout would leave build/ in it
    shutil.copytree(
        REPO,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", "__pycache__", "build", "*.egg-info"),
    )
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(scratch), str(source)],
        cwd=scratch,
        timeout=INSTALL_TIMEOUT,
    )
    (built,) = scratch.glob("obsconf-*.whl")
    return built


def _venv(wheel: Path, directory: Path, extras: str = "") -> Path:
    """A fresh virtual environment with the wheel (and its dependencies) installed; its bin."""
    venv.create(directory, with_pip=True)
    python = directory / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, f"{wheel}{extras}"], cwd=directory, timeout=INSTALL_TIMEOUT)
    return directory / "bin"


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install obsconf`: the suite and the harness, not the reference system."""
    return _venv(wheel, tmp_path_factory.mktemp("venv"))


@pytest.fixture(scope="module")
def installed_reference(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install 'obsconf[reference]'`."""
    return _venv(wheel, tmp_path_factory.mktemp("venv-reference"), "[reference]")


@pytest.mark.stack
def test_the_suite_installs_without_the_reference_system(installed: Path) -> None:
    probe = f"import importlib.util as u; print([n for n in {REFERENCE_ONLY!r} if u.find_spec(n)])"
    out = _run([str(installed / "python"), "-c", probe], cwd=installed, timeout=60).stdout
    assert out.strip() == "[]", f"`pip install obsconf` brought the reference's libraries: {out}"
    for command in (["up"], ["reproduce", "no-inject"], ["run"]):
        proc = subprocess.run(
            [str(installed / "obsconf"), *command], capture_output=True, text=True, timeout=60
        )
        said = proc.stdout + proc.stderr
        assert proc.returncode == 2, (command, said)
        assert "pip install 'obsconf[reference]'" in said and "Traceback" not in said, said


SCRATCH_CONFTEST = """
import pytest

@pytest.fixture
def driver():
    return "their driver"

@pytest.fixture
def target():
    return "their target"
"""
SCRATCH_TEST = """
import sys

def test_their_fixtures(driver, target):
    assert (driver, target) == ("their driver", "their target")

def test_the_suite_was_not_loaded():
    suite = ("obsconf.fixtures.conformance", "obsconf.conformance.catalog")
    assert not [name for name in suite if name in sys.modules]

def test_their_arguments_are_theirs(pytestconfig):
    assert pytestconfig.args == ["."]
"""


@pytest.mark.stack
def test_the_plugin_stays_out_of_other_projects(installed: Path, tmp_path: Path) -> None:
    """A project of their own, with obsconf installed: their `driver` and `target` fixtures,
    their arguments, no file of ours read, no fixture of ours registered."""
    project = tmp_path / "theirs"
    project.mkdir()
    (project / "conftest.py").write_text(SCRATCH_CONFTEST)
    (project / "test_theirs.py").write_text(SCRATCH_TEST)
    proc = _run(
        [str(installed / "pytest"), "-q", "-p", "no:cacheprovider", "."],
        cwd=project,
        timeout=RUN_TIMEOUT,
    )
    assert "3 passed" in proc.stdout, proc.stdout
    assert "guarantees" not in proc.stdout and "verdict" not in proc.stdout, proc.stdout
    fixtures = _run(
        [str(installed / "pytest"), "--fixtures", "-q", "-p", "no:cacheprovider", "."],
        cwd=project,
        timeout=RUN_TIMEOUT,
    ).stdout
    assert "obsconf" not in fixtures, fixtures


@pytest.mark.stack
def test_the_wheel_holds_one_namespace_and_its_data(installed_reference: Path) -> None:
    probe = (
        "import importlib.resources as r, obsconf, sys;"
        "print(obsconf.__file__);"
        "print(r.files('obsconf.targets').joinpath('reference.yaml').is_file());"
        "print(r.files('obsconf.stack').joinpath('versions.toml').is_file());"
        "print(r.files('obsconf.conformance').joinpath('catalog.yaml').is_file());"
        "print(r.files('obsconf.conformance').joinpath('target.schema.json').is_file());"
        "import importlib.util as u;"
        "print([n for n in ('conformance', 'stack', 'reports', 'fixtures', 'reference_services')"
        " if u.find_spec(n)])"
    )
    bin_dir = installed_reference
    out = _run([str(bin_dir / "python"), "-c", probe], cwd=bin_dir, timeout=60).stdout
    location, *flags, stray = out.strip().splitlines()
    assert "site-packages" in location, location
    assert flags == ["True"] * 4, out
    assert stray == "[]", f"top-level packages outside the obsconf namespace: {stray}"


@pytest.mark.stack
def test_obsconf_run_elsewhere_with_the_default_target(
    installed_reference: Path, tmp_path: Path
) -> None:
    """With the extra, `obsconf run` with no --target grades the bundled reference target."""
    proc = _run(
        [str(installed_reference / "obsconf"), "run", "--out", str(tmp_path / "out"),
         "-k", "MET-TARGET-UP or LOG-JSON-LINES"],
        cwd=tmp_path,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert "verdict: PASS" in proc.stdout, proc.stdout[-3000:]
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.stack
@pytest.mark.parametrize("program", ["pytest", "obsconf"])
def test_their_target_from_elsewhere(program: str, installed: Path, tmp_path: Path) -> None:
    """`pytest --target theirs.yaml` and `obsconf run --target theirs.yaml`, with only the
    suite installed, in a directory of their own: their implementation (a copy of
    tests/foreign_impl) is started, graded and stopped."""
    theirs = tmp_path / "theirs"
    shutil.copytree(FOREIGN, theirs, ignore=shutil.ignore_patterns("__pycache__"))
    command = {
        "pytest": [str(installed / "pytest"), "-q", "-p", "no:cacheprovider"],
        "obsconf": [str(installed / "obsconf"), "run"],
    }[program]
    proc = _run(
        [*command, "--target", "theirs/target.yaml", "--out", "out", "-k", "MET-TARGET-UP"],
        cwd=tmp_path,
        timeout=RUN_TIMEOUT,
    )
    assert "verdict: PASS" in proc.stdout, proc.stdout[-3000:]
    assert (tmp_path / "out" / "results.json").is_file()
