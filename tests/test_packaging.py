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


def _folder(package: str) -> Path:
    """The repository folder a package of the namespace is mapped to."""
    mapping = SETUPTOOLS["package-dir"]
    head = max((p for p in mapping if package == p or package.startswith(p + ".")), key=len)
    rest = package[len(head) :].lstrip(".")
    return REPO / mapping[head] / Path(*rest.split(".")) if rest else REPO / mapping[head]


def test_the_package_list_is_every_folder_of_the_namespace() -> None:
    """A package added to a mapped folder and forgotten in pyproject would be missing from the
    wheel (and only from the wheel)."""
    listed = set(SETUPTOOLS["packages"])
    found = {"obsconf", "obsconf.targets"}
    for top in (p for p in SETUPTOOLS["package-dir"] if p.count(".") == 1):
        for init in _folder(top).rglob("__init__.py"):
            rest = init.parent.relative_to(_folder(top)).parts
            found.add(".".join((top, *rest)))
    assert listed == found, {"missing": found - listed, "stale": listed - found}


def test_the_plugin_is_an_entry_point() -> None:
    assert PYPROJECT["project"]["entry-points"]["pytest11"] == {
        "obsconf": "obsconf.fixtures.conformance"
    }


def _run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(command)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
        f"{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel (and its dependencies) installed; its bin."""
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"  # a copy: building in the checkout would leave build/ in it
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".git", "__pycache__", "build", "*.egg-info")
    )
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(scratch), str(source)],
        cwd=scratch,
        timeout=INSTALL_TIMEOUT,
    )
    (wheel,) = scratch.glob("obsconf-*.whl")
    env_dir = scratch / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        cwd=scratch,
        timeout=INSTALL_TIMEOUT,
    )
    return env_dir / "bin"


@pytest.mark.stack
def test_the_wheel_holds_one_namespace_and_its_data(installed: Path) -> None:
    probe = (
        "import importlib.resources as r, obsconf, sys;"
        "print(obsconf.__file__);"
        "print(r.files('obsconf.targets').joinpath('reference.yaml').is_file());"
        "print(r.files('obsconf.stack').joinpath('versions.toml').is_file());"
        "print(r.files('obsconf.conformance').joinpath('catalog.yaml').is_file());"
        "import importlib.util as u;"
        "print([n for n in ('conformance', 'stack', 'reports', 'fixtures', 'reference_services')"
        " if u.find_spec(n)])"
    )
    out = _run([str(installed / "python"), "-c", probe], cwd=installed, timeout=60).stdout
    location, *flags, stray = out.strip().splitlines()
    assert "site-packages" in location, location
    assert flags == ["True"] * 3, out
    assert stray == "[]", f"top-level packages outside the obsconf namespace: {stray}"


@pytest.mark.stack
def test_obsconf_run_elsewhere_with_the_default_target(installed: Path, tmp_path: Path) -> None:
    """`obsconf run` with no --target grades the bundled reference target."""
    proc = _run(
        [str(installed / "obsconf"), "run", "--out", str(tmp_path / "out"),
         "-k", "MET-TARGET-UP or LOG-JSON-LINES"],
        cwd=tmp_path,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert "verdict: PASS" in proc.stdout, proc.stdout[-3000:]
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.stack
def test_pytest_target_theirs_from_elsewhere(installed: Path, tmp_path: Path) -> None:
    """`pytest --target theirs.yaml`, in a directory of their own: the entry point brings the
    plugin and the suite; their implementation (a copy of tests/foreign_impl) is started,
    graded and stopped."""
    theirs = tmp_path / "theirs"
    shutil.copytree(FOREIGN, theirs, ignore=shutil.ignore_patterns("__pycache__"))
    proc = _run(
        [str(installed / "pytest"), "-q", "-p", "no:cacheprovider",
         "--target", "theirs/target.yaml", "--report-dir", "out", "-k", "MET-TARGET-UP"],
        cwd=tmp_path,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip
    assert "verdict: PASS" in proc.stdout, proc.stdout[-3000:]
    assert (tmp_path / "out" / "results.json").is_file()
