"""One run at a time on a started stack: the lock a run given `--stack-endpoints` takes.

Two runs on one stack share its scrape jobs (file_sd files named after the services), its log
files and its NATS durable names, and corrupt each other's results without a word. So a run on
a started stack takes `run.lock` in the stack's run dir (`Endpoints.run_dir`): an exclusive,
non-blocking `flock`, held for the whole run. The kernel drops it when the run's process ends,
however it ends (SIGKILL included), so no stale lock is ever left to clear. The holder writes
who it is into the file (pid, command line, start time); a second run reads that and is
refused, before it sends anything, with a message naming the holder.

A stack that names no run dir (an endpoints file written by hand for a stack elsewhere) is
locked by its Prometheus and NATS URLs, in `<cache>/locks/`. The file is never removed while
its stack runs: removing a locked file would let the next run lock a new file beside it; the
run dir goes with the stack.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

from obsconf.stack.binaries import cache_root
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.waiting import PollTimeout, poll

LOCK_FILE = "run.lock"
HOW_TO_PROCEED = (
    "wait for it to end, or start another stack (`obsconf up --json > OTHER.json`) "
    "and run with --stack-endpoints OTHER.json"
)


class StackBusy(RuntimeError):
    """Another run holds the stack, or the stack is gone; the message says which and what to
    do."""


def lock_path(endpoints: Endpoints) -> Path:
    """Where a run on the stack of `endpoints` takes its lock."""
    if endpoints.run_dir:
        return Path(endpoints.run_dir) / LOCK_FILE
    key = hashlib.sha256(f"{endpoints.prometheus} {endpoints.nats}".encode()).hexdigest()[:16]
    return cache_root() / "locks" / f"stack-{key}.lock"


def holder_info() -> dict[str, object]:
    """Who this process is, as the lock file records it."""
    return {
        "pid": os.getpid(),
        "command": shlex.join(sys.orig_argv),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def describe_holder(info: dict[str, object]) -> str:
    command = " ".join(str(info.get("command", "?")).split())  # one line
    if len(command) > 300:
        command = command[:297] + "..."
    return f"pid {info.get('pid', '?')} ({command}), started {info.get('started_at', '?')}"


def _read_holder(fd: int) -> dict[str, object]:
    """What the holder wrote; it writes right after it locks, so an empty file is polled
    briefly, then reported as unknown."""

    def read() -> dict[str, object]:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
        return data if isinstance(data, dict) else {}

    try:
        return poll(read, timeout=2.0, describe="the lock holder to record itself")
    except PollTimeout:
        return {}


class RunLock:
    """A held stack lock; `release()` (idempotent) frees it, and so does the end of the
    process."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # a free lock names no holder
        finally:
            os.close(fd)  # closing the only descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_stack(endpoints: Endpoints, what: str = "the stack") -> RunLock:
    """Take the lock of the stack of `endpoints` (see `acquire`); `StackBusy` too if the
    stack's run dir is gone (the stack stopped)."""
    path = lock_path(endpoints)
    if endpoints.run_dir and not path.parent.is_dir():
        raise StackBusy(
            f"{what} is not running: its run dir {path.parent} is gone; "
            "start one with `obsconf up --json > FILE`"
        )
    path.parent.mkdir(parents=True, exist_ok=True)  # the cache's locks dir, for no run dir
    return acquire(path, what)


def acquire(path: Path, what: str = "the stack") -> RunLock:
    """Take the lock at `path` (its directory exists) for this process, without waiting;
    `StackBusy`, naming the holder, if another run holds it."""
    # O_CLOEXEC (Python's default too): no service this run starts inherits the lock
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = _read_holder(fd)
        finally:
            os.close(fd)
        who = describe_holder(holder) if holder else "a run that has not said who it is"
        raise StackBusy(
            f"{what} is in use by another run: {who}; two runs on one stack corrupt each "
            f"other's results, so this one sends nothing: {HOW_TO_PROCEED} (lock: {path})"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    lock = RunLock(path, fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder_info()).encode(), 0)
    except BaseException:
        lock.release()
        raise
    return lock
