"""Which `obsconf up` processes are running: one state file per process.

Each `obsconf up` writes `<dir>/<pid>.json` (its endpoints, services and how to recognise the
process) once its stack is ready, and removes it when it stops. `<dir>` is
`$OBSCONF_UP_STATE`, else `<cache>/up` (`~/.cache/obsconf/up`). A file whose process is gone —
killed without cleaning up, or its pid since reused by another program (the process start time
differs) — is stale: `entries()` removes it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obsconf.stack.binaries import cache_root
from obsconf.stack.process import pid_alive

STATE_ENV = "OBSCONF_UP_STATE"


def state_dir() -> Path:
    override = os.environ.get(STATE_ENV)
    return Path(override) if override else cache_root() / "up"


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if it is gone or a
    zombie (exited, not yet reaped). With the pid, it names one process: a pid reused later
    has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    state, start = fields[0], fields[19]
    return None if state in ("Z", "X") else start


def is_running(pid: int, start: str | None) -> bool:
    if not Path("/proc/self/stat").exists():  # no procfs: the pid is all there is
        return pid_alive(pid)
    now = process_start(pid)
    return now is not None and (start is None or now == start)


@dataclass(frozen=True)
class Entry:
    """One `obsconf up`: its pid, its state file and what it printed."""

    pid: int
    path: Path
    info: dict[str, Any]

    @property
    def running(self) -> bool:
        return is_running(self.pid, self.info.get("process_start"))

    def describe(self) -> str:
        info = self.info
        stack = (info.get("kinds") or {}).get("stack", "?")
        services = len(info.get("services") or {})
        since = info.get("started_at", "?")
        return (
            f"pid {self.pid}: {stack} stack, {services} service(s), up since {since}, "
            f"prometheus {info.get('prometheus', '?')}"
        )


def record(info: dict[str, Any]) -> Path:
    """Write this process's state file; returns its path."""
    pid = os.getpid()
    state = {
        **info,
        "pid": pid,
        "process_start": process_start(pid),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{pid}.json"
    scratch = path.with_suffix(".tmp")
    scratch.touch(mode=0o600)  # it holds the database password of the services
    scratch.write_text(json.dumps(state))
    scratch.replace(path)  # readers never see half a file
    return path


def forget(pid: int | None = None) -> None:
    """Remove the state file of `pid` (default: this process)."""
    (state_dir() / f"{pid or os.getpid()}.json").unlink(missing_ok=True)


def entries() -> tuple[list[Entry], list[Entry]]:
    """(running, stale): every state file, stale ones removed."""
    running: list[Entry] = []
    stale: list[Entry] = []
    directory = state_dir()
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
        try:
            info = json.loads(path.read_text())
            entry = Entry(int(info["pid"]), path, info)
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: not ours to keep
            continue
        if entry.running:
            running.append(entry)
        else:
            path.unlink(missing_ok=True)
            stale.append(entry)
    return running, stale
