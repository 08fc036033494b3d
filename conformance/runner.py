"""`obsconf run`: the suite as a command.

The target file is validated before anything starts; the suite then runs in-process with
pytest and leaves `report.html`, `results.json` and `junit.xml` in the output directory.
Exit status: the run's verdict (`obsconf.conformance.results.verdict`): 0 PASS, 1 FAIL, 6 INCOMPLETE;
2 when the target file is rejected before anything starts. Fault names are the implementation's
business: they reach its start commands as `{faults}` (the reference services' `obsconf run`
checks theirs before calling `run`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from obsconf.conformance.target import TargetError, load_target

SUITE_DIR = Path(__file__).resolve().parent
DEFAULT_TARGET = SUITE_DIR.parent / "targets" / "reference.yaml"
PLUGINS = ("obsconf.fixtures.stack", "obsconf.fixtures.conformance")


def suite_args(
    target: Path,
    out: Path,
    faults: Sequence[str] = (),
    stack_endpoints: Path | None = None,
    select: str | None = None,
    quiet: bool = True,
    stack: str | None = None,
    run_timeout: float | None = None,
) -> list[str]:
    """The pytest command line of one suite run."""
    args = [str(SUITE_DIR), "-p", "no:cacheprovider", "--rootdir", str(SUITE_DIR.parent)]
    for plugin in PLUGINS:
        args += ["-p", plugin]
    args += [f"--target={target}", f"--report-dir={out}"]
    args += [f"--fault={f}" for f in faults]
    if stack_endpoints:
        args.append(f"--stack-endpoints={stack_endpoints}")
    if stack:
        args.append(f"--stack={stack}")
    if select:
        args += ["-k", select]
    if run_timeout is not None:
        args.append(f"--run-timeout={run_timeout}")
    if quiet:
        args.append("-q")
    return args


def run(
    target: Path | None,
    out: Path,
    faults: Sequence[str] = (),
    stack_endpoints: Path | None = None,
    select: str | None = None,
    stack: str | None = None,
    run_timeout: float | None = None,
) -> int:
    """Validate the target, run the suite, return its exit status."""
    target = target or DEFAULT_TARGET
    try:
        load_target(target)
    except TargetError as error:
        print(f"obsconf run: {error}")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    args = suite_args(
        target, out, faults, stack_endpoints, select, stack=stack, run_timeout=run_timeout
    )
    with _sigterm_as_interrupt():
        return int(pytest.main(args))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does: pytest tears the session down, so the services
    and the stack it started are stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
