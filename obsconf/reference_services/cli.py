"""The reference system's commands, registered into `obsconf` through the `obsconf.commands`
entry point group (`register`); the suite itself does not know them:

- `obsconf up`: the stack and the reference services (with fault modes), until stopped;
- `obsconf faults`: every fault mode and the guarantees it breaks (`negative_controls.yaml`);
- `obsconf reproduce FAULT`: start everything with one fault, run only what it breaks;
- `obsconf run --fault F`: fault names are checked against `faults.FAULTS` before anything
  starts when the target starts the reference services (exit 2); then the suite runs, the
  names reaching the start commands as `{faults}`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from obsconf.conformance import cli as suite_cli
from obsconf.conformance import options
from obsconf.conformance.results import Outcome, ResultsError, load_results
from obsconf.conformance.target import Target
from obsconf.stack import orphans, upstate
from obsconf.stack.binaries import MissingBinary
from obsconf.stack.services import PREDEFINED


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack (and the reference services), print endpoints, run until signalled."""
    if not args.no_services and not _installed():
        return 2
    from obsconf.reference_services.faults import UnknownFault
    from obsconf.reference_services.launcher import ReferenceServices, ServiceFailed
    from obsconf.stack.backends import make_stack, stack_kind
    from obsconf.stack.docker_engine import NoDockerEngine
    from obsconf.stack.images import ImagesMissing
    from obsconf.stack.local import ComponentFailed
    from obsconf.stack.signals import Terminated, install_termination_handlers

    install_termination_handlers()
    suite_cli.apply_images(args)
    services: ReferenceServices | None = None
    stack = None
    try:
        kind = stack_kind(args.obsconf_stack)
        if kind == "external":
            raise ValueError("`obsconf up --stack external` starts nothing: use local/containers")
        for item in orphans.sweep():
            print(
                f"obsconf up: removed {item} (left by a stack whose owner was killed)",
                file=sys.stderr,
            )
        stack = make_stack(kind)
        started = time.monotonic()
        endpoints = stack.start()
        info = endpoints.as_dict()
        if not args.no_services:
            services = ReferenceServices(endpoints, faults=args.fault)
            info["services"] = services.start()
            info["faults"] = list(args.fault)
        info["started_in_s"] = round(time.monotonic() - started, 2)
        info["pid"] = os.getpid()
        upstate.record(info)
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            for key, value in info.items():
                print(f"{key:>12}: {value}", flush=True)
            print(f"stack is up; Ctrl-C or `obsconf down {os.getpid()}` stops it", flush=True)
        signal.pause()
    except (KeyboardInterrupt, Terminated):
        pass
    except (
        MissingBinary,
        ComponentFailed,
        ServiceFailed,
        UnknownFault,
        NoDockerEngine,
        ImagesMissing,
        ValueError,
    ) as error:
        print(f"obsconf up: {error}", file=sys.stderr)
        return 1
    finally:
        if services is not None:
            services.stop()
        if stack is not None:
            stack.stop()
        upstate.forget()
    return 0


def cmd_faults(_args: argparse.Namespace) -> int:
    """Every fault mode of the reference services and the guarantees it breaks."""
    from obsconf.reference_services.faults import FAULTS
    from obsconf.reference_services.negative_controls import broken_by

    for name, fault in sorted(FAULTS.items()):
        ids = ", ".join(g.id for g in broken_by(name)) or "(none: not a negative control yet)"
        print(f"{name:<26} {fault.description}\n{'':<26} breaks: {ids}")
    return 0


LIBRARIES = ("fastapi", "uvicorn", "sqlalchemy", "motor", "opentelemetry.sdk")
NOT_INSTALLED = "the reference services need their libraries: pip install 'obsconf[reference]'"


def missing_libraries() -> list[str]:
    """The reference services' libraries that are not installed (`obsconf` without the
    `reference` extra)."""
    return [name for name in LIBRARIES if importlib.util.find_spec(name.split(".")[0]) is None]


def _installed() -> bool:
    missing = missing_libraries()
    if missing:
        print(f"obsconf: {NOT_INSTALLED} (missing: {', '.join(missing)})", file=sys.stderr)
    return not missing


def fault_error(target: Target, faults: Sequence[str]) -> str | None:
    """Why `target` cannot be run with `faults` (None if it can), when it starts the reference
    services: their libraries are not installed, or a name is no fault mode. Other targets'
    fault names are theirs to check."""
    from obsconf.reference_services.faults import UnknownFault, parse_faults

    if not any(spec.start == PREDEFINED["reference"] for spec in target.services.values()):
        return None
    if missing_libraries():
        return f"{NOT_INSTALLED} (missing: {', '.join(missing_libraries())})"
    if not faults:
        return None
    try:
        parse_faults(",".join(faults))
    except UnknownFault as error:
        return str(error)
    return None


def reproduce(
    fault: str, out: Path, stack_endpoints: Path | None = None, stack: str | None = None
) -> int:
    """Start everything with `fault`, run only the guarantees it breaks, show what broke."""
    from obsconf.conformance.runner import run
    from obsconf.reference_services.faults import FAULTS
    from obsconf.reference_services.negative_controls import broken_by

    guarantees = broken_by(fault)
    if not guarantees:
        print(f"obsconf reproduce: unknown fault {fault!r}; valid: {', '.join(sorted(FAULTS))}")
        return 2
    select = " or ".join(g.id for g in guarantees)
    print(f"reproducing fault {fault!r}: it should break {select.replace(' or ', ', ')}")
    given = {"out": out, "fault": [fault], "stack_endpoints": stack_endpoints, "stack": stack}
    status = run(given, select)
    try:
        results = load_results(out / "results.json")
    except ResultsError as error:
        print(f"obsconf reproduce: the run wrote no readable results (exit {status}): {error}")
        return 1
    caught = [g for g in results.guarantees if g.outcome == Outcome.FAILED]
    for g in caught:
        print(f"\n=== {g.id} ({g.level}) FAILED: {g.statement}\n{g.message}")
    missed = sorted({g.id for g in guarantees} - {g.id for g in caught})
    print(f"\nreport: {(out / 'report.html').resolve()}")
    if missed:
        print(f"NOT caught: {', '.join(missed)}")
        return 1
    print(f"caught: all {len(caught)} guarantee(s) the fault breaks failed, as they should")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    if not _installed():
        return 2
    suite_cli.apply_images(args)
    return reproduce(args.fault, args.obsconf_out, args.obsconf_stack_endpoints, args.obsconf_stack)


def register(commands: suite_cli.Commands) -> None:
    """The `obsconf.commands` entry point: `up`, `reproduce`, `faults`, and the fault-name
    check of `obsconf run`."""
    p = commands.add("up", "start the stack and the reference services; keep them running", cmd_up)
    p.add_argument("--json", action="store_true", help="print one JSON line of endpoints")
    p.add_argument("--no-services", action="store_true", help="the stack only")
    p.add_argument("--fault", action="append", default=[], help="reference-service fault mode")
    suite_cli.stack_options(p)
    p = commands.add(
        "reproduce", "start everything with a fault and show what it breaks", cmd_reproduce
    )
    p.add_argument("fault")
    options.add_to_argparse(p, only=("--out", "--stack-endpoints", "--stack", "--images"))
    commands.add("faults", "list the fault modes and what each breaks", cmd_faults)
    commands.check_run(fault_error)


if __name__ == "__main__":
    # `python -m` runs this file as __main__: register the importable module's function, the
    # one the installed entry point names, so it is not added twice.
    from obsconf.reference_services import cli as this

    sys.exit(suite_cli.main(also=[this.register]))
