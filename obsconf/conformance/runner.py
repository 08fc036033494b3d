"""`obsconf run`: the suite as a command.

The target file is validated before anything starts; the suite then runs in-process with
pytest and leaves `report.html`, `results.json` and `junit.xml` in the output directory.
Exit status: the run's verdict (`obsconf.conformance.results.verdict`): 0 PASS, 1 FAIL, 6
INCOMPLETE; 2 when the target file is rejected before anything starts. Fault names are the
implementation's business: they reach its start commands as `{faults}` (a registered run
check, such as the reference services', refuses unknown ones before `run` is called).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from obsconf.conformance import options
from obsconf.conformance.target import Target, TargetError, load_target
from obsconf.fixtures.plugin import ParsedTarget
from obsconf.stack.signals import interrupt_on_stop

SUITE_DIR = Path(__file__).resolve().parent
DEFAULT_TARGET = SUITE_DIR.parent / "targets" / "reference.yaml"


def suite_args(
    given: Mapping[str, Any], select: str | None = None, quiet: bool = True
) -> list[str]:
    """The pytest command line of one suite run with these option values (by `dest`)."""
    args = [str(SUITE_DIR), "-p", "no:cacheprovider", "--rootdir", str(SUITE_DIR.parent)]
    args.append(f"--confcutdir={SUITE_DIR}")  # a checkout's own conftest.py stays out
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        args += ["-p", "obsconf"]  # else the entry point loads it
    args += options.pytest_args(given)
    if select:
        args += ["-k", select]
    if quiet:
        args.append("-q")
    return args


def run(given: Mapping[str, Any], select: str | None = None, target: Target | None = None) -> int:
    """Run the suite with these option values (by `dest`), return its exit status. The target
    file is parsed here, once (or `target` is the one the caller parsed), and handed to the
    plugin."""
    path = given.get("target") or DEFAULT_TARGET
    if target is None:
        try:
            target = load_target(path)
        except TargetError as error:
            print(f"obsconf run: {error}")
            return 2
    given = {**given, "target": path, "out": Path(given.get("out") or options.DEFAULT_OUT)}
    refusal = options.out_error(given["out"])
    if refusal:
        print(f"obsconf run: {refusal}")
        return 2
    restore = interrupt_on_stop()  # also before the plugin is configured
    try:
        return int(pytest.main(suite_args(given, select), plugins=[ParsedTarget(target)]))
    finally:
        restore()
