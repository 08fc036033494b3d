"""The options of a suite run, declared once: `obsconf run` and `pytest --target` expose each
with the same name, type, default and help, and `pytest_args` turns the values back into the
pytest command line (the only place that builds one)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from obsconf.stack.backends import STACK_KINDS
from obsconf.stack.images import IMAGE_SETS

RUN_TIMEOUT_S = 900.0
DEFAULT_FLOWS = 20  # concurrent flows of the LOAD family
DEFAULT_OUT = Path("obsconf-report")


@dataclass(frozen=True)
class Number:
    """An option's number type with its range: a value outside it is one line naming the range
    (argparse and pytest print it with the option's name, before anything starts)."""

    kind: type[int] | type[float]
    minimum: float
    note: str = ""

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}") from None
        if not math.isfinite(value) or value < self.minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: {self.describe()}")
        return value

    def describe(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        return f"{noun} >= {self.minimum:g}{self.note}"

    @property
    def __name__(self) -> str:  # argparse names the type in its "invalid value" message
        return self.kind.__name__


@dataclass(frozen=True)
class Option:
    """One option of a suite run. `cli_only`: only `obsconf run` has it (pytest has its own,
    or it means several runs)."""

    flag: str
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    repeat: bool = False
    choices: Sequence[str] | None = None
    cli_only: bool = False

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"help": self.help, "dest": f"obsconf_{self.dest}"}
        if self.repeat:
            kw.update(action="append", default=[])
        else:
            kw["default"] = self.default
        if self.choices:
            kw["choices"] = list(self.choices)
        else:
            kw["metavar"] = self.dest.upper()
            if self.type is not str:
                kw["type"] = self.type
        return kw


OPTIONS: tuple[Option, ...] = (
    Option("--target", "target YAML (default: the bundled reference target)", type=Path),
    Option(
        "--fault",
        "fault mode, passed to the target's start commands as {faults} (repeatable)",
        repeat=True,
    ),
    Option("--out", "write report.html, results.json and junit.xml into this directory", Path),
    Option("--results", "also write the per-guarantee JSON results to this file", Path),
    Option("--stack-endpoints", "reuse a running stack (the output of `obsconf up --json`)", Path),
    Option(
        "--stack",
        "stack backend (default: $OBSCONF_STACK, else the target's backends.start, else local)",
        choices=STACK_KINDS,
    ),
    Option(
        "--images",
        "container image set: upstream (pulled) or local (`obsconf images`); $OBSCONF_IMAGES",
        choices=IMAGE_SETS,
    ),
    Option(
        "--outage-seconds",
        "how long the RES scenarios keep a dependency down (default 8; a benchmark uses one "
        "longer than any redelivery budget)",
        Number(float, 1),
    ),
    Option(
        "--run-timeout",
        "seconds the whole run may take; then the test in progress fails naming what it "
        f"waited for and the run stops (default {RUN_TIMEOUT_S:g}, 0 = none)",
        Number(float, 0, " (0 = none)"),
        default=RUN_TIMEOUT_S,
    ),
    Option(
        "--flows",
        f"concurrent flows of the LOAD family (default {DEFAULT_FLOWS}; 1000 for a load test)",
        Number(int, 1),
        default=DEFAULT_FLOWS,
    ),
)
BY_DEST = {option.dest: option for option in OPTIONS}


class _Group(Protocol):
    def addoption(self, *opts: str, **attrs: Any) -> None: ...


def add_to_pytest(group: _Group) -> None:
    """Every option, in pytest's "obsconf conformance" group."""
    for option in OPTIONS:
        if not option.cli_only:
            group.addoption(option.flag, **option.kwargs())


def add_to_argparse(
    parser: argparse.ArgumentParser,
    *,
    several_targets: bool = False,
    only: Sequence[str] | None = None,
) -> None:
    """The options (`only` these flags, if given) on an `obsconf` subcommand; with
    `several_targets`, --target may repeat (one run each)."""
    for option in OPTIONS:
        if only is not None and option.flag not in only:
            continue
        kwargs = option.kwargs()
        if option.flag == "--target" and several_targets:
            kwargs.update(action="append", default=[], help=f"{option.help}; several: one run "
                          "each, and a matrix page")  # fmt: skip
        if option.flag == "--out":
            kwargs["default"] = DEFAULT_OUT
        parser.add_argument(option.flag, **kwargs)


def values(namespace: argparse.Namespace | Mapping[str, Any]) -> dict[str, Any]:
    """The run's option values by `dest`, from a parsed `obsconf` command line."""
    source = vars(namespace) if isinstance(namespace, argparse.Namespace) else namespace
    return {o.dest: source.get(f"obsconf_{o.dest}", o.default) for o in OPTIONS}


def out_error(out: Path) -> str | None:
    """Why the run could not write its reports into `out` (None if it can): checked, and the
    directory made, before anything starts, so a run's results are never lost at its end."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: is a file, not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".obsconf-write-probe"
        probe.touch()
        probe.unlink()
    except OSError as error:
        return f"--out {out}: cannot write there ({error.strerror or error})"
    return None


def pytest_args(given: Mapping[str, Any]) -> list[str]:
    """The pytest arguments that give the suite these option values (defaults left out)."""
    args: list[str] = []
    for dest, value in given.items():
        option = BY_DEST[dest]
        if option.cli_only or value is None or value == option.default:
            continue
        items = value if option.repeat else [value]
        args += [f"{option.flag}={item}" for item in items]
    return args
