"""The suite's commands: install, doctor, images, down, run, trace.

They know no implementation. The `obsconf` program is this parser extended by the reference
services' own commands (`up`, `faults`, `reproduce`, fault-name checks on `run --fault`),
which live with those services and build on `build_parser`; `python -m obsconf.conformance.cli` is
the
suite's commands alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from obsconf.stack import orphans, upstate
from obsconf.stack.binaries import MissingBinary

Subcommands = argparse._SubParsersAction  # what `add_subparsers` returns


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
    failed, else the first other non-zero status, else 0."""
    from obsconf.conformance.outage import OUTAGE_ENV
    from obsconf.conformance.runner import run

    apply_images(args)
    if args.outage_seconds is not None:
        os.environ[OUTAGE_ENV] = str(args.outage_seconds)  # read by the RES scenarios
    targets = args.target or [None]
    if len(targets) == 1:
        return run(
            targets[0],
            args.out,
            args.fault,
            args.stack_endpoints,
            args.k,
            args.stack,
            run_timeout=args.run_timeout,
            flows=args.flows,
        )
    from obsconf.reports.matrix import write_matrix

    outs = target_dirs(args.out, targets)
    statuses = [
        run(
            t, o, args.fault, args.stack_endpoints, args.k, args.stack, args.run_timeout, args.flows
        )
        for t, o in zip(targets, outs, strict=True)
    ]
    page = write_matrix(args.out / "matrix.html", [o / "results.json" for o in outs])
    print(f"implementations side by side: {page}")
    if 1 in statuses:
        return 1
    return next((s for s in statuses if s), 0)


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


def stack_options(p: argparse.ArgumentParser, default_help: str) -> None:
    from obsconf.stack.backends import STACK_KINDS
    from obsconf.stack.images import IMAGE_SETS

    p.add_argument("--stack", choices=STACK_KINDS, default=None, help=default_help)
    p.add_argument(
        "--images",
        choices=IMAGE_SETS,
        default=None,
        help="container image set: upstream (pulled) or local (`obsconf images`)",
    )


def apply_images(args: argparse.Namespace) -> None:
    from obsconf.stack.images import SET_ENV

    if getattr(args, "images", None):
        os.environ[SET_ENV] = args.images  # children (the suite, services) see it too


def cmd_images(args: argparse.Namespace) -> int:
    from obsconf.stack.docker_engine import NoDockerEngine
    from obsconf.stack.images.build import ImageBuildError, main

    try:
        return main(args.components)
    except (NoDockerEngine, ImageBuildError, MissingBinary) as error:
        print(f"obsconf images: {error}", file=sys.stderr)
        return 1


def build_parser(*extensions: Callable[[Subcommands], None]) -> argparse.ArgumentParser:
    """The suite's commands; each extension then adds or changes subcommands (`sub.choices`
    holds the parsers by name)."""
    parser = argparse.ArgumentParser(prog="obsconf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("install", help="install every stack component (idempotent)")
    p.add_argument("--only", action="append", default=[], help="component name")
    p.add_argument("--containers", action="store_true", help="also docker.io and debootstrap (apt)")
    p.add_argument(
        "--no-native", action="store_true", help="skip building the Go/Rust implementations"
    )
    p.set_defaults(fn=cmd_install)
    sub.add_parser("doctor", help="what is installed, what is missing").set_defaults(fn=cmd_doctor)
    p = sub.add_parser("images", help="build the local container images (no registry needed)")
    p.add_argument("components", nargs="*", help="only these (default: all)")
    p.set_defaults(fn=cmd_images)
    p = sub.add_parser("down", help="stop a running `obsconf up` (PID or --all if several)")
    p.add_argument("pid", nargs="?", type=int, default=None, help="the `obsconf up` to stop")
    p.add_argument("--all", action="store_true", help="stop every running `obsconf up`")
    p.set_defaults(fn=cmd_down)
    p = sub.add_parser("run", help="run the conformance suite against a target")
    p.add_argument(
        "--target",
        type=Path,
        action="append",
        default=None,
        help="target YAML (default: reference); several: one run each, and a matrix page",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        help="fault mode, passed to the target's start commands as {faults} (repeatable)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("obsconf-report"),
        help="where report.html, results.json and junit.xml go",
    )
    p.add_argument(
        "--stack-endpoints",
        type=Path,
        default=None,
        help="reuse a running stack (`obsconf up --json` output)",
    )
    p.add_argument("-k", default=None, help="select guarantees, e.g. TRC or 'LOG and not LOAD'")
    p.add_argument(
        "--outage-seconds",
        type=float,
        default=None,
        help="how long the RES scenarios keep a dependency down (default 8; a benchmark uses "
        "one longer than any redelivery budget)",
    )
    p.add_argument(
        "--run-timeout",
        type=float,
        default=None,
        help="seconds the run may take before the test in progress fails naming what it "
        "waited for (default 900)",
    )
    p.add_argument(
        "--flows",
        type=int,
        default=None,
        help="concurrent user flows of the LOAD family (default 20; e.g. 1000 for a load test)",
    )
    stack_options(p, "stack backend (default: $OBSCONF_STACK, else the target's backends.start)")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("trace", help="fetch a trace, print its tree and any gap")
    p.add_argument("trace_id")
    p.add_argument("--traces", default=None, help="trace store URL (default: the running stack)")
    p.add_argument(
        "--target",
        type=Path,
        default=None,
        help="target YAML: also check the expected service path",
    )
    p.set_defaults(fn=cmd_trace)
    for extend in extensions:
        extend(sub)
    return parser


def main(
    argv: list[str] | None = None, extensions: Sequence[Callable[[Subcommands], None]] = ()
) -> int:
    args = build_parser(*extensions).parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
