"""Local stacks whose owner died without cleaning up (SIGKILL): found and removed.

Every local stack writes `owner.json` (pid and process start time of the process that started
it) into its run dir. Its components die with their owner (parent-death signal), but a killed
owner leaves the run dir and PostgreSQL's System V shared-memory segment behind. `sweep()`
finds run dirs whose owner is gone and removes the segment (when nothing is attached to it),
any process still running from the dir, and the dir. A run dir without an owner file is left
alone: nothing says whose it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from obsconf.stack.upstate import is_running, process_start

RUN_DIR_PREFIX = "obsconf-stack-"
OWNER_FILE = "owner.json"
SHM_TABLE = Path("/proc/sysvipc/shm")


def claim(run_dir: Path) -> None:
    """Record this process as the owner of `run_dir`."""
    pid = os.getpid()
    (run_dir / OWNER_FILE).write_text(json.dumps({"pid": pid, "start": process_start(pid)}))


def orphans(root: Path | None = None) -> list[Path]:
    """Run dirs under `root` (the temp dir) whose owner process is gone."""
    found = []
    for run_dir in sorted((root or Path(tempfile.gettempdir())).glob(f"{RUN_DIR_PREFIX}*")):
        try:
            owner = json.loads((run_dir / OWNER_FILE).read_text())
            alive = is_running(int(owner["pid"]), owner.get("start"))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not alive:
            found.append(run_dir)
    return found


def postmaster(run_dir: Path) -> tuple[int | None, int | None]:
    """(pid, shmid) from the run dir's postmaster.pid, if PostgreSQL left one."""
    try:
        lines = (run_dir / "postgres" / "data" / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None, None
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    shm = lines[6].split() if len(lines) > 6 else []
    return pid, int(shm[1]) if len(shm) == 2 and shm[1].isdigit() else None


def attached(shmid: int) -> int | None:
    """Processes attached to segment `shmid` (None: no such segment)."""
    with contextlib.suppress(OSError):
        for line in SHM_TABLE.read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1]) == shmid:
                return int(fields[6])
    return None


def _kill_if_from(pid: int, run_dir: Path) -> None:
    """SIGKILL `pid` if its command line names `run_dir` (a component that outlived it)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return
    if str(run_dir) in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def clean(run_dir: Path) -> list[str]:
    """Remove what an orphaned stack left: returns what was removed."""
    removed = []
    pid, shmid = postmaster(run_dir)
    if pid is not None:
        _kill_if_from(pid, run_dir)
    if shmid is not None and attached(shmid) == 0:
        done = subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True, check=False)
        if done.returncode == 0:
            removed.append(f"shared-memory segment {shmid}")
    shutil.rmtree(run_dir, ignore_errors=True)
    removed.append(str(run_dir))
    return removed


def sweep(root: Path | None = None) -> list[str]:
    """Clean every orphaned local stack under `root`; what was removed, for the user."""
    return [item for run_dir in orphans(root) for item in clean(run_dir)]
