"""The suite knows nothing of the reference services: `conformance/` imports nothing from
`reference_services` (nor names it), and every module of it, the suite's commands and the
pytest plugin (the `obsconf` entry point and the stack fixtures it loads) import with
`reference_services` made unimportable."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "conformance"
REFERENCE = "reference_services"


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_no_module_of_the_suite_imports_the_reference() -> None:
    offenders = {
        str(path.relative_to(REPO)): name
        for path in SUITE.rglob("*.py")
        for name in _imports(path)
        if REFERENCE in name.split(".")
    }
    assert not offenders, offenders


def test_no_file_of_the_suite_names_the_reference() -> None:
    """What `grep -r reference_services conformance/` checks: catalog, docs strings, all."""
    named = [
        str(path.relative_to(REPO))
        for path in SUITE.rglob("*")
        if path.is_file() and path.suffix != ".pyc" and REFERENCE in path.read_text()
    ]
    assert not named


BLOCKED = textwrap.dedent(
    f"""
    import importlib, pkgutil, sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if {REFERENCE!r} in name.split("."):
                raise ImportError("blocked: " + name)

    sys.meta_path.insert(0, Block())
    import obsconf.conformance as suite
    for module in pkgutil.walk_packages(suite.__path__, "obsconf.conformance."):
        importlib.import_module(module.name)
    for plugin in ("obsconf.fixtures.plugin", "obsconf.fixtures.conformance"):
        importlib.import_module(plugin)
    from obsconf.conformance import catalog, cli
    assert catalog.catalog()
    names = set(cli.program(extend=False)[1].names)
    assert {{"run", "trace", "down", "install"}} <= names, names
    assert not {{"up", "faults", "reproduce"}} & names, names
    assert not [m for m in sys.modules if {REFERENCE!r} in m.split(".")]
    print("ok")
    """
)


def test_the_suite_imports_without_the_reference() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
