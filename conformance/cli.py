"""The `obsconf` command: install, doctor, up, down, and (as they land) run, trace, faults."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from stack.binaries import MissingBinary, cache_root


def _state_file() -> Path:
    return cache_root() / "up.json"


def cmd_install(args: argparse.Namespace) -> int:
    from stack.install import main as install_main

    return install_main([f"--only={name}" for name in args.only])


def cmd_doctor(_args: argparse.Namespace) -> int:
    from stack.doctor import doctor

    return doctor()


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack, print one JSON line of endpoints, run until SIGINT/SIGTERM."""
    from stack.local import ComponentFailed, LocalStack
    from stack.signals import Terminated, install_termination_handlers

    install_termination_handlers()
    stack = LocalStack()
    try:
        started = time.monotonic()
        endpoints = stack.start()
        info = endpoints.as_dict()
        info["started_in_s"] = round(time.monotonic() - started, 2)
        info["pid"] = os.getpid()
        _state_file().parent.mkdir(parents=True, exist_ok=True)
        _state_file().write_text(json.dumps(info))
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            for key, value in info.items():
                print(f"{key:>12}: {value}", flush=True)
            print("stack is up; Ctrl-C or `obsconf down` stops it", flush=True)
        signal.pause()
    except (KeyboardInterrupt, Terminated):
        pass
    except (MissingBinary, ComponentFailed) as error:
        print(f"obsconf up: {error}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        _state_file().unlink(missing_ok=True)
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    """Stop a running `obsconf up` (SIGTERM to it; it cleans up after itself)."""
    try:
        pid = json.loads(_state_file().read_text())["pid"]
    except (FileNotFoundError, KeyError, ValueError):
        print("obsconf down: no running `obsconf up` found")
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        _state_file().unlink(missing_ok=True)
        print(f"obsconf down: process {pid} was already gone")
        return 0
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print(f"obsconf down: stopped {pid}")
            return 0
        time.sleep(0.1)
    print(f"obsconf down: {pid} still running after 30 s", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="obsconf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("install", help="install every stack component (idempotent)")
    p.add_argument("--only", action="append", default=[], help="component name")
    p.set_defaults(fn=cmd_install)
    sub.add_parser("doctor", help="what is installed, what is missing").set_defaults(fn=cmd_doctor)
    p = sub.add_parser("up", help="start the stack and keep it running")
    p.add_argument("--json", action="store_true", help="print one JSON line of endpoints")
    p.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop a running `obsconf up`").set_defaults(fn=cmd_down)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
