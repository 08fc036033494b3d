"""The `obsconf` program: the suite's commands (install, doctor, images, down, run, trace),
which know no implementation, and the commands installed distributions add.

Extension point: an entry point in the group `obsconf.commands` names a function
`register(commands: Commands)`; it adds subcommands (`commands.add`) and checks a run before
anything starts (`commands.check_run`). The reference system registers `up`, `faults`,
`reproduce` and its fault-name check this way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from obsconf.conformance import options
from obsconf.stack import orphans, upstate
from obsconf.stack.binaries import MissingBinary

if TYPE_CHECKING:
    from obsconf.conformance.target import Target

COMMANDS_GROUP = "obsconf.commands"
RunCheck = Callable[["Target", Sequence[str]], "str | None"]  # why not to run, or None


@dataclass
class Commands:
    """What a `register` function of the `obsconf.commands` group may extend."""

    subparsers: Any  # argparse's subparsers action; only `add` touches it
    run_checks: list[RunCheck] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def add(
        self, name: str, help: str, fn: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        """A new subcommand `name` that runs `fn(args)`; returns its parser for arguments."""
        parser: argparse.ArgumentParser = self.subparsers.add_parser(name, help=help)
        parser.set_defaults(fn=fn)
        self.names.append(name)
        return parser

    def check_run(self, check: RunCheck) -> None:
        """`check(target, faults)` before `obsconf run` starts anything: a message refuses it
        (exit 2)."""
        self.run_checks.append(check)


def cmd_install(args: argparse.Namespace) -> int:
    from obsconf.stack.install import main as install_main

    flags = ["--containers"] * args.containers + ["--no-native"] * args.no_native
    return install_main([f"--only={name}" for name in args.only] + flags)


def cmd_doctor(_args: argparse.Namespace) -> int:
    from obsconf.stack.doctor import doctor

    return doctor()


DOWN_WAIT_S = 30.0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop running `obsconf up` processes (SIGTERM; each cleans up after itself): the only one,
    the one named by PID, or --all. With several running and neither given, refuse and list
    them. Also removes stale state files and containers left by a killed container stack."""
    from obsconf.stack.docker_engine import engine_answers

    if engine_answers():
        from obsconf.stack.containers import sweep

        for name in sweep():
            print(f"obsconf down: removed {name} (its owner process was gone)")
    running, stale = upstate.entries()
    for entry in stale:
        print(f"obsconf down: removed the state of {entry.pid} (the process was gone)")
    for item in orphans.sweep():
        print(f"obsconf down: removed {item} (left by a stack whose owner was killed)")
    if args.pid is not None:
        chosen = [e for e in running if e.pid == args.pid]
        if not chosen:
            print(f"obsconf down: no running `obsconf up` has pid {args.pid}", file=sys.stderr)
            _list_running(running, sys.stderr)
            return 1
    elif args.all or len(running) <= 1:
        chosen = running
    else:
        print(
            f"obsconf down: {len(running)} `obsconf up` are running; name one "
            "(`obsconf down PID`) or stop them all (`obsconf down --all`):",
            file=sys.stderr,
        )
        _list_running(running, sys.stderr)
        return 2
    if not chosen:
        print("obsconf down: no running `obsconf up` found")
        return 0
    for entry in chosen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_WAIT_S
    waiting = list(chosen)
    while waiting and time.monotonic() < deadline:
        for entry in [e for e in waiting if not e.running]:
            upstate.forget(entry.pid)  # normally gone already: it removes its own on exit
            print(f"obsconf down: stopped {entry.pid}")
            waiting.remove(entry)
        time.sleep(0.1)
    for entry in waiting:
        print(f"obsconf down: {entry.pid} still running after {DOWN_WAIT_S:g} s", file=sys.stderr)
    return 1 if waiting else 0


def _list_running(running: list[upstate.Entry], stream: TextIO) -> None:
    for entry in running:
        print(f"  {entry.describe()}", file=stream)


def cmd_run(args: argparse.Namespace) -> int:
    """One target: its report in --out. Several: each in --out/<target name>/, and
    --out/matrix.html with one column per target; the exit status is FAIL (1) if a run
    failed, else the first other non-zero status, else 0. Each target file is parsed once,
    checked by every registered run check, and handed to the suite."""
    from obsconf.conformance.runner import DEFAULT_TARGET, run
    from obsconf.conformance.target import TargetError, load_target

    given = options.values(args)
    paths = given["target"] or [DEFAULT_TARGET]
    parsed = []
    for path in paths:
        try:
            target = load_target(path)
        except TargetError as error:
            print(f"obsconf run: {error}")
            return 2
        for check in [faults_unused, *args.run_checks]:
            refusal = check(target, given["fault"])
            if refusal:
                print(f"obsconf run: {refusal}")
                return 2
        parsed.append(target)
    if len(paths) == 1:
        return run({**given, "target": paths[0]}, args.k, parsed[0])
    from obsconf.reports.matrix import write_matrix

    outs = target_dirs(given["out"], paths)
    statuses = [
        run({**given, "target": path, "out": out}, args.k, target)
        for path, out, target in zip(paths, outs, parsed, strict=True)
    ]
    page = write_matrix(given["out"] / "matrix.html", [o / "results.json" for o in outs])
    print(f"implementations side by side: {page}")
    if 1 in statuses:
        return 1
    return next((s for s in statuses if s), 0)


def faults_unused(target: Target, faults: Sequence[str]) -> str | None:
    """`--fault` names that no start command of the target would receive (it takes no
    `{faults}`): refused before anything starts, as nothing would be broken."""
    if not faults:
        return None
    if any(spec.start and spec.start.uses("faults") for spec in target.services.values()):
        return None
    return (
        f"--fault {','.join(faults)}: no start command of target {target.name!r} takes "
        "{faults}, so no service would receive it"
    )


def target_dirs(out: Path, targets: list[Path]) -> list[Path]:
    """One output directory per target under `out`, named by the target file's stem."""
    dirs: list[Path] = []
    for target in targets:
        name, n = target.stem, 2
        while out / name in dirs:
            name, n = f"{target.stem}-{n}", n + 1
        dirs.append(out / name)
    return dirs


def cmd_trace(args: argparse.Namespace) -> int:
    from obsconf.conformance.target import TargetError, load_target
    from obsconf.conformance.trace_command import explain_trace

    traces_url = args.traces
    if traces_url is None:
        running, _ = upstate.entries()
        if len(running) != 1:
            why = "no running `obsconf up` found" if not running else "several `obsconf up` run"
            print(f"obsconf trace: give --traces URL ({why})")
            for entry in running:
                print(f"  {entry.describe()}; traces {entry.info.get('traces')}")
            return 2
        traces_url = running[0].info["traces"]
    try:
        target = load_target(args.target) if args.target else None
    except TargetError as error:
        print(f"obsconf trace: {error}")
        return 2
    status, text = explain_trace(args.trace_id, traces_url, target)
    print(text)
    return status


def stack_options(p: argparse.ArgumentParser) -> None:
    """--stack and --images as the suite declares them, for commands that start a stack."""
    options.add_to_argparse(p, only=("--stack", "--images"))


def apply_images(args: argparse.Namespace) -> None:
    from obsconf.stack.images import SET_ENV

    if getattr(args, "obsconf_images", None):
        os.environ[SET_ENV] = args.obsconf_images  # children (the suite, services) see it too


def cmd_images(args: argparse.Namespace) -> int:
    from obsconf.stack.docker_engine import NoDockerEngine
    from obsconf.stack.images.build import ImageBuildError, main

    try:
        return main(args.components)
    except (NoDockerEngine, ImageBuildError, MissingBinary) as error:
        print(f"obsconf images: {error}", file=sys.stderr)
        return 1


Register = Callable[[Commands], None]


def program(
    *, extend: bool = True, also: Sequence[Register] = ()
) -> tuple[argparse.ArgumentParser, Commands]:
    """The suite's commands, then those of every `obsconf.commands` entry point (unless
    `extend` is false) and of `also` (for a checkout run without installed metadata)."""
    parser = argparse.ArgumentParser(prog="obsconf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    commands = Commands(sub)
    p = commands.add("install", "install every stack component (idempotent)", cmd_install)
    p.add_argument("--only", action="append", default=[], help="component name")
    p.add_argument("--containers", action="store_true", help="also docker.io and debootstrap (apt)")
    p.add_argument(
        "--no-native", action="store_true", help="skip building the Go/Rust implementations"
    )
    commands.add("doctor", "what is installed, what is missing", cmd_doctor)
    p = commands.add("images", "build the local container images (no registry needed)", cmd_images)
    p.add_argument("components", nargs="*", help="only these (default: all)")
    p = commands.add("down", "stop a running `obsconf up` (PID or --all if several)", cmd_down)
    p.add_argument("pid", nargs="?", type=int, default=None, help="the `obsconf up` to stop")
    p.add_argument("--all", action="store_true", help="stop every running `obsconf up`")
    p = commands.add("run", "run the conformance suite against a target", cmd_run)
    options.add_to_argparse(p, several_targets=True)
    p.add_argument("-k", default=None, help="select guarantees, e.g. TRC or 'LOG and not LOAD'")
    p.set_defaults(run_checks=commands.run_checks)
    p = commands.add("trace", "fetch a trace, print its tree and any gap", cmd_trace)
    p.add_argument("trace_id")
    p.add_argument("--traces", default=None, help="trace store URL (default: the running stack)")
    p.add_argument(
        "--target",
        type=Path,
        default=None,
        help="target YAML: also check the expected service path",
    )
    registers = [e.load() for e in entry_points(group=COMMANDS_GROUP)] if extend else []
    for register in dict.fromkeys([*registers, *also]):
        register(commands)
    return parser, commands


def main(argv: list[str] | None = None, also: Sequence[Register] = ()) -> int:
    """The `obsconf` entry point."""
    args = program(also=also)[0].parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
